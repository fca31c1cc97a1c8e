"""Plain-text tables for the commands' printed results."""

from __future__ import annotations


def print_table(header: list[str], rows: list[list], left: tuple[int, ...] = (0,)) -> None:
    """Print ``rows`` under ``header`` in aligned columns: those in ``left`` left-aligned, the rest right."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(x).ljust(w) if i in left else str(x).rjust(w)
                for i, (x, w) in enumerate(zip(row, widths, strict=True))
            )
        )
