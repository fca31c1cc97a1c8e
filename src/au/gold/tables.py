"""The two tables ``au gold`` writes, each with one declared schema checked on every write and read (au.tables).

``splits.parquet``: one row per (stream, entry, method, check, epsilon, split) of the split check and
of the held-out-population check.
``training_size.parquet``: one row per (ablation trial, detector, epsilon).
"""

from __future__ import annotations

import pyarrow as pa

SPLITS_FILE = "splits.parquet"
TRAINING_SIZE_FILE = "training_size.parquet"

SPLITS_SCHEMA = pa.schema(
    [
        pa.field("stream", pa.string(), nullable=False),  # "in" or "mixed"
        pa.field("entry", pa.string(), nullable=False),  # detector, detector@layer, or combo
        pa.field("method", pa.string(), nullable=False),  # the certificate: "sgr" or "ltt"
        pa.field("check", pa.string(), nullable=False),  # "split" (cal_fraction) or "population" (held out)
        pa.field("epsilon", pa.float64(), nullable=False),
        pa.field("split", pa.int32(), nullable=False),
        pa.field("certified", pa.bool_(), nullable=False),
        pa.field("threshold", pa.float64()),  # null when nothing is certified (nothing accepted)
        pa.field("risk_bound", pa.float64(), nullable=False),
        pa.field("cal_coverage", pa.float64(), nullable=False),
        pa.field("coverage", pa.float64(), nullable=False),  # on the split's test part
        pa.field("test_risk", pa.float64(), nullable=False),
        pa.field("violated", pa.bool_(), nullable=False),  # test_risk > epsilon
    ]
)

TRAINING_SIZE_SCHEMA = pa.schema(
    [
        pa.field("run_dir", pa.string(), nullable=False),  # relative to the sweep directory
        pa.field("kind", pa.string(), nullable=False),  # the sweep's kind: "fraction" or "class"
        pa.field(
            "fraction", pa.float64(), nullable=False
        ),  # keep-fraction (of the ablated class in a class sweep)
        pa.field("ablated_class", pa.int32(), nullable=False),  # -1 in a fraction sweep
        pa.field("trial", pa.int32(), nullable=False),
        pa.field("n_train", pa.int64(), nullable=False),
        pa.field("test_accuracy", pa.float64(), nullable=False),  # on the scored test inputs
        pa.field("detector", pa.string(), nullable=False),
        pa.field("epsilon", pa.float64(), nullable=False),
        pa.field("coverage", pa.float64(), nullable=False),  # first split's test part
        pa.field("coverage_mean", pa.float64(), nullable=False),  # over all splits
        pa.field("coverage_std", pa.float64(), nullable=False),
        pa.field("violation_rate", pa.float64(), nullable=False),
        pa.field("aurc", pa.float64(), nullable=False),
        pa.field("score_mean", pa.float64(), nullable=False),  # mean score of the test inputs
    ]
)
