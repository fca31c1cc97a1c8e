"""The one exception type AU raises for mistakes a user can fix.

Every :class:`AUError` message is a single line that says which input was wrong, what was wrong
with it and what to do instead. The CLI prints it without a traceback and exits non-zero;
Python callers can catch it like any other exception. Internal invariants use ``assert``.
"""


class AUError(Exception):
    """A user-facing error: bad input, a missing data source, a conflicting output directory."""
