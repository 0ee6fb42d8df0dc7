"""Errors of the replay data layer; each message is one line that names the path and what to do."""

from __future__ import annotations


class ReplayDataError(ValueError):
    """A replay data directory or file is missing, empty or malformed."""
