"""Conversion between wire formats and numpy: the only package that knows a wire format.

`datatypes` holds the one datatype table; `tensors` turns JSON data and length-prefixed bytes into
arrays and back; `rest` reads and writes the REST bodies (KServe v1, OIP v2, MLRun forms).
"""
