"""Progress bars for long steps (tqdm) and status lines, on stderr.

``AU_PROGRESS=0`` turns the bars off; ``au --quiet`` turns off bars and status lines.
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

_enabled = os.environ.get("AU_PROGRESS", "1") != "0"
_notes = True


def set_enabled(enabled: bool) -> None:
    """Turn progress bars and status lines on or off."""
    global _enabled, _notes
    _enabled = _notes = enabled


def bar(total: int | None, desc: str, unit: str = "it", enabled: bool = True, initial: int = 0) -> tqdm:
    """A progress bar; updates at most once a second when stderr is not a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        disable=not (enabled and _enabled),
        mininterval=0.2 if sys.stderr.isatty() else 5.0,
        dynamic_ncols=True,
        leave=False,
        file=sys.stderr,
    )


def note(message: str) -> None:
    """A one-line status message on stderr (silenced with the bars)."""
    if _notes:
        print(message, file=sys.stderr, flush=True)
