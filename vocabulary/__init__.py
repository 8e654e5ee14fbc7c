"""The words every layer shares: OIP datatype names with their numpy dtypes, and `TensorSpec`.

It imports nothing of Modelport's, so `config/` (which validates the tensors a config entry
declares) and `app/` (which serves them) both build on it without importing each other back.
"""
