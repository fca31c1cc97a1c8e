"""Checks of single values shared by the configurations (light: configs import it before torch)."""

from __future__ import annotations

from au.errors import AUError


def check_level(value: float, name: str) -> float:
    """``value`` as a float strictly between 0 and 1, or a clear error naming ``name``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise AUError(f"{name} must be a number between 0 and 1 (exclusive), got {value!r}") from None
    if not 0.0 < value < 1.0:
        raise AUError(f"{name} must lie strictly between 0 and 1, got {value:g}")
    return value
