"""Per-stream Prometheus metrics: messages taken, answered (by status), failed, and lag.

Written straight to prometheus-client (no buffer as `app.metrics` keeps for requests): a
message costs milliseconds, and a killed worker's counts must already be in the files.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECEIVED = Counter(
    "modelport_stream_messages_received", "Messages taken from a stream's input", ["stream"]
)
ANSWERED = Counter(
    "modelport_stream_messages_answered",
    "Messages answered on a stream's output, by status (an error answer counts too)",
    ["stream", "status"],
)
FAILED = Counter(
    "modelport_stream_messages_failed",
    "Messages answered with an error (status 400 and up)",
    ["stream"],
)
IN_FLIGHT = Gauge(
    "modelport_stream_in_flight",
    "Messages taken and not yet acknowledged",
    ["stream"],
    multiprocess_mode="livesum",
)
# The broker's own figures for the whole consumer group: every worker reports the same value.
LAG = Gauge(
    "modelport_stream_lag",
    "Messages in the input not yet delivered to the group, as the broker reports it",
    ["stream"],
    multiprocess_mode="livemax",
)
PENDING = Gauge(
    "modelport_stream_pending",
    "Messages delivered to the group and not yet acknowledged, as the broker reports it",
    ["stream"],
    multiprocess_mode="livemax",
)
