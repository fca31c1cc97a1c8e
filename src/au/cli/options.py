"""Argument types shared by the sub-commands: they reject bad values with a one-line message."""

from __future__ import annotations

import argparse
import math


def fraction(text: str) -> float:
    """A float in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0.0 < value <= 1.0) or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def open_fraction(text: str) -> float:
    """A float in (0, 1)."""
    value = fraction(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1)")
    return value


def fraction_list(text: str) -> tuple[float, ...]:
    """Comma-separated floats in (0, 1], e.g. ``0.01,0.1,1``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("expected comma-separated numbers in (0, 1]")
    return tuple(fraction(p) for p in parts)
