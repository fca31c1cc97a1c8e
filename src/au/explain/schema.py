"""The tables of ``au explain`` and ``au perturb``, each declared once and written through :func:`au.tables.write_table`.

``attributions.parquet``, one row per (input, method)::

    dataset      string   the dataset spec            example_id  string  the example's stable id
    label        int64    -1 when it has none          pred        int64   the model's prediction
    target       int64    the class explained          method      string  saliency, guided_backprop, ...
    shape        fixed_size_list<int32>[3]   the input's C, H, W
    channels     int32    channels of the map: C, or 1 for Grad-CAM (repeated over C in ``values``)
    values       fixed_size_list<float32>[C*H*W]   the map in C, H, W order

``units.parquet``, one row per (unit, rank): ``layer``, ``unit`` (``CHANNEL`` or ``CHANNEL:Y:X``),
``rank`` (1 = strongest), ``example_id``, ``activation``, with the example's ``label`` and ``pred``.

``backtrace.parquet``, one row per neuron partition of the input, lowest z first: where it sits
among held-out training inputs, its neurons, its nearest training examples and the projection of
its novelty onto the input (``values``, as in the attributions table).

``perturb.parquet``, one row per setting: ``layer``, ``kind``, ``sigma`` (null unless noise),
``units``, ``factor`` (null for noise), ``seed``, ``n``, ``accuracy``, ``changed``, then per
detector ``<name>_shift`` (mean score change in clean standard deviations) and ``<name>_auroc``
(clean against perturbed inputs).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

ATTRIBUTIONS = "attributions.parquet"
UNITS = "units.parquet"
BACKTRACE = "backtrace.parquet"
PERTURB = "perturb.parquet"


def _f(name: str, type_: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


def _fixed(type_: pa.DataType, size: int) -> pa.DataType:
    return pa.list_(pa.field("element", type_, nullable=False), size)


def attributions_schema(size: int) -> pa.Schema:
    """Columns of ``attributions.parquet`` for inputs of C*H*W = ``size`` values."""
    return pa.schema(
        [
            _f("dataset", pa.string()),
            _f("example_id", pa.string()),
            _f("label", pa.int64()),
            _f("pred", pa.int64()),
            _f("target", pa.int64()),
            _f("method", pa.string()),
            _f("shape", _fixed(pa.int32(), 3)),
            _f("channels", pa.int32()),
            _f("values", _fixed(pa.float32(), size)),
        ]
    )


def attribution_rows(data, pred, target, maps: dict) -> list[dict]:
    """Rows of ``attributions.parquet``: one per (input of the ImageDataset ``data``, method of ``maps``), each
    map (n, C or 1, H, W) broadcast over the input's C channels; ``pred`` and ``target`` (n,) per input."""
    c = data.input_shape[0]
    rows = []
    for i in range(len(data)):
        for method, values in maps.items():
            m = values[i]
            rows.append(
                {
                    "dataset": data.name,
                    "example_id": str(data.ids[i]),
                    "label": int(data.labels[i]),
                    "pred": int(pred[i]),
                    "target": int(target[i]),
                    "method": method,
                    "shape": list(data.input_shape),
                    "channels": int(m.shape[0]),
                    "values": np.broadcast_to(m, (c, *m.shape[1:])).ravel().astype(np.float32),
                }
            )
    return rows


UNITS_SCHEMA = pa.schema(
    [
        _f("layer", pa.string()),
        _f("unit", pa.string()),
        _f("rank", pa.int32()),
        _f("example_id", pa.string()),
        _f("activation", pa.float64()),
        _f("label", pa.int64()),
        _f("pred", pa.int64()),
    ]
)


def backtrace_schema(size: int) -> pa.Schema:
    """Columns of ``backtrace.parquet`` for an input of C*H*W = ``size`` values."""
    return pa.schema(
        [
            _f("example_id", pa.string()),
            _f("layer", pa.string()),
            _f("rank", pa.int32()),
            _f("partitioning", pa.int32()),
            _f("partition", pa.int32()),
            _f("neurons", pa.list_(pa.field("element", pa.int32(), nullable=False))),
            _f("log_density", pa.float64()),
            _f("heldout_mean", pa.float64()),
            _f("heldout_std", pa.float64()),
            _f("z", pa.float64()),
            _f("neighbours", pa.list_(pa.field("element", pa.string(), nullable=False))),
            _f("neighbour_distances", pa.list_(pa.field("element", pa.float64(), nullable=False))),
            _f("novelty_gain", pa.float64()),
            _f("shape", _fixed(pa.int32(), 3)),
            _f("values", _fixed(pa.float32(), size)),
        ]
    )


def perturb_schema(detectors) -> pa.Schema:
    """Columns of ``perturb.parquet`` with two columns per detector."""
    per_detector = [_f(f"{d}_{m}", pa.float64()) for d in detectors for m in ("shift", "auroc")]
    return pa.schema(
        [
            _f("layer", pa.string()),
            _f("kind", pa.string()),
            _f("sigma", pa.float64(), nullable=True),
            _f("units", pa.string()),
            _f("factor", pa.float64(), nullable=True),
            _f("seed", pa.int64()),
            _f("n", pa.int64()),
            _f("accuracy", pa.float64()),
            _f("changed", pa.float64()),
            *per_detector,
        ]
    )
