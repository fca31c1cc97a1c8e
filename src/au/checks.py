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


def check_choices(values, known, option: str, what: str) -> tuple[str, ...]:
    """``values`` as a tuple, each one of ``known``, none twice; or one line naming the first unknown one.

    ``option`` names the setting (``--methods``), ``what`` one of its values (``method``).
    """
    values = tuple(values)
    unknown = [v for v in values if v not in known]
    if unknown:
        raise AUError(f"{option}: unknown {what} {unknown[0]!r}; known: {', '.join(known)}")
    if not values:
        raise AUError(f"{option}: no {what} chosen; choose from {', '.join(known)}")
    if len(set(values)) != len(values):
        raise AUError(f"{option}: a {what} is named twice; list each once")
    return values


def check_at_least_one(owner: object, *names: str) -> None:
    """Each attribute ``names`` of ``owner`` (a configuration) is at least 1, or one line naming it."""
    for name in names:
        if getattr(owner, name) < 1:
            raise AUError(f"{name} must be at least 1, got {getattr(owner, name)}")
