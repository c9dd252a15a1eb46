"""report.html must render in a real browser on its own: tables present, every plot an inline PNG."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sqlshift.report import build_report
from report_runs import make_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Collector(HTMLParser):
    """Counts tables and collects img src attributes of the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tables = 0
        self.imgs: list[str] = []
        self.h3: list[str] = []
        self._in_h3 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables += 1
        elif tag == "img":
            self.imgs.append(dict(attrs).get("src") or "")
        elif tag == "h3":
            self._in_h3 = True
            self.h3.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3":
            self._in_h3 = False

    def handle_data(self, data: str) -> None:
        if self._in_h3:
            self.h3[-1] += data


def dump_dom(chromium: str, page: Path, tmp: Path) -> str:
    """The DOM after the page loaded, from headless Chromium (no network: the page must need none)."""
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           f"--user-data-dir={tmp / 'profile'}", "--dump-dom", page.as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.timeout(180)
def test_report_html_renders_in_chromium(tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH (apt-get install -y chromium)")
    run = make_run(tmp_path / "run")
    paths = build_report(run)
    dom = dump_dom(chromium, paths["report.html"], tmp_path)
    c = Collector()
    c.feed(dom)
    n_tables = len(re.findall(r"<table>", paths["report.html"].read_text()))
    assert c.tables == n_tables >= 9
    for title in ("EX (dev)", "Forgetting table", "Composite generality score", "Trade-off points",
                  "Text-to-SQL benchmarks side by side"):
        assert title in c.h3
    assert len(c.imgs) == len(list((run / "plots").glob("*.png"))) == 5
    for src in c.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    assert "http://" not in dom and "https://" not in dom  # self-contained: nothing to fetch
