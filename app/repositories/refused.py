"""The one exception the repository readers raise for what a folder holds."""

from __future__ import annotations


class Refused(Exception):
    """A model (or a whole repository) cannot be served; the message says why.

    Readers turn it into the model entry's `error`; `app.repositories.scan` reports one raised
    for a whole repository (an unreadable settings.json) as that repository's problem.
    """
