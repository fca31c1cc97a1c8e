"""An HTML report as a person sees it: rendered in headless Chromium, its layout measured in the page.

:func:`render` loads a copy of the report with a small script that, once everything has loaded,
writes what it measured into the page: how many images there are and how many failed to load,
the page's width against the window's, and the elements that stick out to the right. Chromium's
``--dump-dom`` prints the page after that; nothing else is needed (no driver, no network).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_MEASURE = """
<script>
window.addEventListener("load", () => {
  const width = document.documentElement.clientWidth;
  const images = [...document.images];
  // an element inside a scrolling box (a wide table scrolls in its own box) does not widen the page
  const clipped = (e) => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(a).overflowX)) return true;
    }
    return false;
  };
  const wide = [...document.body.querySelectorAll("*")]
    .filter((e) => e.getBoundingClientRect().right > width + 1 && !clipped(e))
    .map((e) => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""));
  const out = document.createElement("pre");
  out.id = "au-measured";
  out.textContent = JSON.stringify({
    images: images.length,
    broken: images.filter((i) => !(i.complete && i.naturalWidth > 0)).length,
    smallest_image: Math.min(...images.map((i) => i.getBoundingClientRect().width)),
    page_width: document.documentElement.scrollWidth,
    window_width: width,
    wide: wide.slice(0, 10),
  });
  document.body.appendChild(out);
});
</script>
"""


def render(report: Path, width: int = 1280) -> dict:
    """What a reader's browser shows of ``report`` in a window ``width`` pixels wide."""
    assert CHROMIUM, "chromium is not installed (scripts/setup.sh installs it)"
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(Path(report).read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>"))
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp}/profile",
            f"--window-size={width},900",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ]
        proc = subprocess.run([CHROMIUM, *flags, page.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="au-measured">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"chromium did not render the page: {proc.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
