"""Flask's JSON provider backed by orjson, so `jsonify` and `app.json` share the fast path."""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import JSONProvider


class OrjsonProvider(JSONProvider):
    """orjson for every JSON Flask writes or reads; numpy arrays serialize natively."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialize to a str (Flask's contract)."""
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a str or bytes."""
        return orjson.loads(s)
