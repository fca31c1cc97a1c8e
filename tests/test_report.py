"""The HTML report is self-contained and escapes every string that comes from data."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from au.report import Report, plots
from browser import render


def test_strings_from_data_are_escaped(tmp_path):
    evil = '<script>alert("x")</script>'
    r = Report(f"run {evil}")
    r.heading(evil)
    r.paragraph(evil)
    r.table(["class", "name"], [[0, evil], [1, "a&b"]], caption=evil)
    r.key_values({evil: evil})
    text = r.write(tmp_path / "report.html").read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "a&amp;b" in text


def test_figures_are_embedded(tmp_path):
    r = Report("figs")
    history = {
        "step_loss": [2.0, 1.0, 0.5, 0.4],
        "epoch": [1, 2],
        "train_accuracy": [0.5, 0.8],
        "val_accuracy": [0.6, None],
    }
    r.figure(plots.training_curve(history), "curve")
    text = r.write(tmp_path / "r.html").read_text()
    assert 'src="data:image/png;base64,' in text and "http" not in text.split("<body>")[1]


def test_numbers_are_formatted():
    r = Report("t")
    r.table(["a", "b", "c"], [[1234, 0.123456, float("nan")]], digits=3)
    html = r.render()
    assert "1,234" in html and "0.123" in html and "n/a" in html


@pytest.mark.parametrize("width", [1280, 800])
def test_a_wide_report_fits_the_window_in_chromium(tmp_path, width):
    """Rendered as a reader sees it: every image loads, nothing makes the page wider than the window."""
    r = Report("wide")
    r.table([f"column {i}" for i in range(30)], [list(range(30))] * 3, caption="thirty columns")
    fig, ax = plt.subplots(figsize=(30, 3))  # 3,300 pixels wide at the report's resolution
    ax.plot([0, 1], [0, 1])
    r.figure(fig, "a very wide figure")
    seen = render(r.write(tmp_path / "r.html"), width)
    assert seen["images"] == 1 and seen["broken"] == 0
    assert seen["page_width"] <= seen["window_width"] and not seen["wide"], seen
    assert seen["smallest_image"] <= seen["window_width"]
