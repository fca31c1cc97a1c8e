"""``au curve``: fit learning curves to a finished sweep; write ``fits.json`` and the figures.

Layout of a curve directory (a ``curve`` job, :mod:`au.jobs`; by default ``SWEEP_DIR/curve``)::

    fits.json                          the fits (au.curves.learning_curve), the sweep and the options
    learning_curve.png, error_loglog.png, per_class.png    (a fraction sweep)
    class_ablation.png                                     (a class sweep)
    manifest.json                      written last: the trials table's SHA-256, the options, the outputs
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from safetensors import safe_open

from au import jobs, progress
from au.ablation.table import TRIALS_FILE, read_trials
from au.curves import plots
from au.curves.config import CurveOptions
from au.curves.learning_curve import analyse_class_sweep, analyse_fraction_sweep
from au.files import read_json, write_json
from au.report.plots import save as save_figure
from au.train.rundir import WEIGHTS, read_manifest

FITS_FILE = "fits.json"


@dataclass
class CurveResult:
    """A finished analysis: its directory, the fits (as in ``fits.json``), figure paths and the trials."""

    path: Path
    fits: dict
    figures: dict[str, Path]
    table: pa.Table


def _count_parameters(weights: Path) -> int | None:
    try:
        with safe_open(str(weights), "pt") as f:
            return int(sum(np.prod(f.get_slice(k).get_shape()) for k in f.keys()))
    except Exception:  # the count is context for the report, not a result
        return None


def analyse_sweep(sweep_dir: Path, options: CurveOptions, out: Path | None = None) -> CurveResult:
    """Fit the sweep in ``sweep_dir``; write ``fits.json`` and PNG figures into ``out`` (default ``SWEEP_DIR/curve``)."""
    sweep_dir = Path(sweep_dir)
    sweep = jobs.read_manifest(sweep_dir, "ablate")
    table = read_trials(sweep_dir)
    first = sweep_dir / table.column("run_dir")[0].as_py()
    class_names = tuple(read_manifest(first)["class_names"])
    identity = {"trials_sha256": sweep["outputs"][TRIALS_FILE]["sha256"], "options": asdict(options)}
    claim = jobs.claim(
        jobs.Job("curve", out or sweep_dir / "curve", identity, f"learning curve of {sweep_dir}")
    )
    if claim.done:
        progress.note(f"{claim.out}: this analysis is already complete; nothing to do")
        figures = {k: claim.path(v) for k, v in claim.manifest["figures"].items()}
        return CurveResult(claim.out, read_json(claim.path(FITS_FILE), "fits"), figures, table)

    figures = {}
    config = sweep["identity"]
    if config["kind"] == "class":
        fits = analyse_class_sweep(table, class_names, options)
        figures["class_ablation"] = plots.class_ablation_curve(fits)
    else:
        fits, boot = analyse_fraction_sweep(table, options, _count_parameters(first / WEIGHTS))
        figures["learning_curve"] = plots.accuracy_curve(table, boot, fits)
        figures["error_loglog"] = plots.error_loglog(table, boot, fits)
        figures["per_class"] = plots.per_class_curves(table, class_names)

    fits = {
        "sweep": {k: config[k] for k in ("model", "data", "kind", "trials", "seed")},
        "options": {**asdict(options), "targets": list(options.targets)},
        **fits,
    }
    write_json(claim.path(FITS_FILE), fits)
    paths = {k: save_figure(fig, claim.path(f"{k}.png")) for k, fig in figures.items()}
    claim.finish(
        {"sweep": str(sweep_dir), "figures": {k: p.name for k, p in paths.items()}},
        outputs=[FITS_FILE, *(p.name for p in paths.values())],
    )
    return CurveResult(claim.out, fits, paths, table)
