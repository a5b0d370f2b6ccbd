"""report.html and the overlay pictures: page structure (html.parser), inlined images that decode, the sort
script, no network references, the legend; a real headless browser when one is installed."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import load_volume

from medseg_fast.io import Meta, write_image
from medseg_fast.pipelines.evaluate import evaluate, overlay_picture
from medseg_fast.report import centre_of_mass, legend, voc_colormap

Image = pytest.importorskip("PIL.Image")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.images, self.scripts, self.refs, self.headers = [], [], [], [], []
        self._in_script = False
        self._table = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = {"class": a.get("class", ""), "rows": 0}
            self.tables.append(self._table)
        elif tag == "tr" and self._table is not None:
            self._table["rows"] += 1
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "script":
            self._in_script = True
            if "src" in a:
                self.refs.append(a["src"])
        elif tag in ("link", "a") and a.get("href"):
            self.refs.append(a["href"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def _cases(tmp_path, n=3):
    ct, spacing = load_volume("ct_chest_lung2_crop_hu.nii.gz")
    tumour, _ = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    meta = Meta(spacing, (0.0, 0.0, 0.0), np.eye(3))
    for d in ("gt", "pred", "img"):
        (tmp_path / d).mkdir()
    g = np.zeros(ct.shape, np.uint8)
    g[ct > -400] = 1
    g[tumour > 0] = 2
    for i in range(n):
        p = np.roll(g, i, axis=2)
        write_image(tmp_path / "gt" / f"c{i}.nii.gz", g, meta)
        write_image(tmp_path / "pred" / f"c{i}.nii.gz", p, meta)
        write_image(tmp_path / "img" / f"c{i}_0000.nii.gz", ct, meta)
    return g


def test_report_page_structure(tmp_path):
    _cases(tmp_path)
    (tmp_path / "ds").mkdir()
    labels = {0: "background", 1: "soft tissue", 2: "tumour"}
    evaluate(tmp_path / "pred", tmp_path / "gt", tmp_path / "out", labels=labels, images=tmp_path / "img")
    text = (tmp_path / "out" / "report.html").read_text()
    page = _Page()
    page.feed(text)
    sortable = [t for t in page.tables if "sortable" in t["class"]]
    assert len(sortable) == 3  # per class, per case, case x class
    assert sortable[1]["rows"] == 1 + 3 and sortable[2]["rows"] == 1 + 3 * 2
    assert page.refs == []  # nothing fetched from anywhere
    assert "http://" not in text and "https://" not in text
    assert any("function msfSort" in s and "addEventListener" in s for s in page.scripts)
    assert len(page.images) == 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        im = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        im.load()
        assert im.mode == "RGB" and im.size[0] > 300
    assert "soft tissue" in text and "tumour" in text and "worst cases" in text
    # the PNG overlay is the report's picture (same legend)
    png = (tmp_path / "out" / "overlays" / "c0.png").read_bytes()
    assert base64.b64encode(png).decode() in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_cases"] == 3


def test_overlay_legend_and_views(rng):
    gt = np.zeros((9, 20, 24), np.uint8)
    gt[2:7, 5:15, 6:12] = 1
    gt[4:6, 2:4, 16:22] = 3
    pred = np.roll(gt, 1, axis=1)
    assert centre_of_mass(gt) == tuple(int(round(v)) for v in np.argwhere(gt).mean(0))
    assert centre_of_mass(np.zeros((4, 6, 8))) == (2, 3, 4)
    cmap = voc_colormap()
    pic = overlay_picture(pred, gt, rng.normal(0, 100, gt.shape), spacing=(3.0, 1.0, 1.0),
                          names={1: "liver", 3: "kidney"})
    strip = legend({1: "liver", 3: "kidney"}, cmap, pic.shape[1])
    assert np.array_equal(pic[-strip.shape[0]:], strip)  # the legend closes the picture
    colours = {tuple(c) for c in strip.reshape(-1, 3)}
    assert tuple(cmap[1]) in colours and tuple(cmap[3]) in colours
    body = pic[:-strip.shape[0]]
    assert (np.all(body == cmap[1], axis=-1)).any()  # contour pixels in the class colour
    # 2-D without an image: the colour map itself, legend below
    pic2 = overlay_picture(gt[4], gt[4], names={1: "a", 3: "b"})
    np.testing.assert_array_equal(pic2[8, 10], cmap[1])


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_in_headless_browser(tmp_path):
    """Load the page in headless Chromium: the sort script runs (the DOM dump shows a sorted table after a
    scripted click) and every image decodes (naturalWidth > 0)."""
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium / Chrome on this machine")
    _cases(tmp_path, n=2)
    evaluate(tmp_path / "pred", tmp_path / "gt", tmp_path / "out", images=tmp_path / "img")
    page = tmp_path / "out" / "report.html"
    probe = page.read_text().replace("</body>", """<script>
window.addEventListener("load", () => {
  const th = document.querySelectorAll("table.sortable")[1].tHead.rows[0].cells[1];
  th.click(); th.click();
  const ok = Array.from(document.images).every((im) => im.complete && im.naturalWidth > 0);
  document.body.setAttribute("data-probe", (ok ? "images-ok" : "images-broken") + " order-" + th.dataset.order);
});
</script></body>""")
    page.write_text(probe)
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000",
                          "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60)
    assert 'data-probe="images-ok order-desc"' in out.stdout, out.stderr[-2000:]
    console = [line for line in out.stderr.splitlines() if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)]
    assert console == []
