"""The two kinds of failure the command line tells apart (exit status 2 and 1)."""
from __future__ import annotations


class ConfigError(ValueError):
    """Bad usage or configuration, found before anything is written (exit 2).

    The message is one line naming the bad key/value and what is allowed.
    """


class BuildFailure(RuntimeError):
    """Something went wrong while building (exit 1)."""
