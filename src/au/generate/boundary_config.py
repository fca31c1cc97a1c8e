"""Settings of ``au boundary``: one frozen dataclass, defaults here."""

from __future__ import annotations

from dataclasses import dataclass

from au.errors import AUError


@dataclass(frozen=True)
class BoundaryConfig:
    """Which scored set holds the generated samples (default: the one set of the ``generated`` source),
    and how many of them the report draws beside their guided-backprop maps (every sample's map is written
    to ``guided_backprop.parquet``)."""

    generated: str | None = None
    maps: int = 16

    def __post_init__(self) -> None:
        if self.maps < 1:
            raise AUError(f"maps must be at least 1, got {self.maps}")
