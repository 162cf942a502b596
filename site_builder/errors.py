"""The two kinds of failure the command line tells apart (exit status 2 and 1)."""
from __future__ import annotations


class ConfigError(ValueError):
    """Bad usage or configuration, found before anything is written (exit 2).

    The message is one line naming the bad key/value and what is allowed.
    """


class BuildFailure(RuntimeError):
    """Something went wrong while building (exit 1)."""


def disk_full(exc: OSError) -> str:
    """The one line for a write that ran out of space (ENOSPC, EDQUOT)."""
    where = f" while writing {exc.filename}" if exc.filename else ""
    return (f"no space left on the device{where} ({exc.strerror or exc}); nothing was half-written "
            "and the folders keep their previous complete files: free some space and run the "
            "command again")
