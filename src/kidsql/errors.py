"""One exception type for user-facing input problems: the CLI prints it as a single line and exits 2."""

from __future__ import annotations


class KidsqlError(Exception):
    """Bad input or configuration. The message names the file (or option) and the fix, on one line."""
