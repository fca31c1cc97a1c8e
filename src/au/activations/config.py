"""How to record: one frozen dataclass, defaults in one place (light: no torch, no pyarrow)."""

from __future__ import annotations

from dataclasses import dataclass

from au.errors import AUError

POOLS = ("none", "avg", "max")
DTYPES = ("float16", "float32")
PART_BYTES = 64 << 20
PART_ROWS = 65536


@dataclass(frozen=True)
class RecordConfig:
    """Which layers (names, or ``"all"``), pooled how, stored in which dtype, in batches of what size.

    ``limit`` records only the first N examples; a part is written when its buffered values pass
    ``part_bytes`` or its rows pass ``part_rows``.
    """

    layers: tuple[str, ...] | str = "all"
    pool: str = "avg"
    dtype: str = "float16"
    batch_size: int = 256
    limit: int | None = None
    part_bytes: int = PART_BYTES
    part_rows: int = PART_ROWS

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise AUError(f"batch size must be at least 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise AUError(f"--limit must be at least 1, got {self.limit}")
        if self.pool not in POOLS:
            raise AUError(f"--pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        if self.dtype not in DTYPES:
            raise AUError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
