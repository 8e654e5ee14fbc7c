"""Stream consumers: body-routed requests from message brokers, answered on an output topic.

`core` turns one message into one answer (the same data plane and error bodies as REST) and
holds the metrics and the bounded pool; `mqtt`, `redis_streams` and `kafka` only speak their
broker: how a message is taken, answered and acknowledged. `worker` starts them in every
gunicorn worker. Streams depend on the data plane, never the reverse.
"""
