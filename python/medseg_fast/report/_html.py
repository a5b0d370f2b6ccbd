"""``report.html``: one self-contained page (no network; images inlined as PNG data URIs, styles and the sort
script inline) summarising an evaluation."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["png_bytes", "render_report", "SORT_SCRIPT"]

# Click a header to sort its table by that column (numbers numerically, blanks last); click again to reverse.
SORT_SCRIPT = """
function msfSort(th) {
  const table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
  const asc = th.dataset.order !== "asc";
  for (const h of th.parentNode.children) { delete h.dataset.order; }
  th.dataset.order = asc ? "asc" : "desc";
  const key = (tr) => { const t = tr.cells[col].dataset.v ?? tr.cells[col].textContent.trim();
                        const x = parseFloat(t); return isNaN(x) ? t : x; };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => { const x = key(a), y = key(b);
    if (x === "" || y === "") { return x === "" ? 1 : -1; }
    const c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
    return asc ? c : -c; });
  for (const r of rows) { body.appendChild(r); }
}
document.addEventListener("DOMContentLoaded", () => {
  for (const th of document.querySelectorAll("table.sortable th")) { th.addEventListener("click", () => msfSort(th)); }
});
"""

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #eee; cursor: pointer; user-select: none; }
th[data-order="asc"]::after { content: " \\25B2"; } th[data-order="desc"]::after { content: " \\25BC"; }
td.t, th.t { text-align: left; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
figcaption { font-weight: 600; }
.note { color: #555; }
"""


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG file content of an (H, W, 3) uint8 array (Pillow, best compression)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{digits}g}"
    return html.escape(str(v))


def _cell(v: Any) -> str:
    sort_key = "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
    if isinstance(v, float) and math.isinf(v):
        sort_key = 1e308 if v > 0 else -1e308
    return f'<td data-v="{html.escape(str(sort_key))}">{_num(v)}</td>'


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], text_cols: int = 1, cls: str = "sortable") -> str:
    head = "".join(f'<th class="t">{html.escape(h)}</th>' if i < text_cols else f"<th>{html.escape(h)}</th>"
                   for i, h in enumerate(header))
    body = []
    for r in rows:
        cells = "".join(f'<td class="t">{html.escape(str(v))}</td>' if i < text_cols else _cell(v)
                        for i, v in enumerate(r))
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _finite(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([float(v) for v in values if v is not None and math.isfinite(float(v))], np.float64)


def render_report(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], images: Mapping[str, bytes], *,
                  title: str = "Segmentation evaluation", notes: Sequence[str] = (), worst: int = 3) -> str:
    """The HTML page: per-class summary (mean, std, median, worst cases by Dice), a sortable per-case table,
    a sortable case x class table, and each case's overlay picture (``images``: case -> PNG bytes)."""
    classes: dict[Any, str] = {}
    for r in rows:
        classes.setdefault(r["class"], str(r.get("name", r["class"])))
    cases = sorted({r["case"] for r in rows} | set(images))
    # per-class summary
    summary_rows = []
    for c, name in sorted(classes.items()):
        sel = [r for r in rows if r["class"] == c]
        line: list[Any] = [name, len(sel)]
        for m in metrics:
            v = _finite([r.get(m) for r in sel])
            line += [float(v.mean()) if v.size else None, float(v.std()) if v.size else None,
                     float(np.median(v)) if v.size else None]
        key = "dice" if "dice" in metrics else metrics[0]
        ranked = sorted((r for r in sel if r.get(key) is not None and math.isfinite(r[key])), key=lambda r: r[key])
        line.append(", ".join(f"{r['case']} ({r[key]:.3g})" for r in ranked[:worst]))
        summary_rows.append(line)
    summary_header = ["class", "cases"] + [f"{m} {s}" for m in metrics for s in ("mean", "std", "median")] + [
        f"worst cases ({'dice' if 'dice' in metrics else metrics[0]})"]
    summary_html = _table(summary_header, summary_rows, text_cols=1)
    # per-case table: means over the classes, the worst class
    case_rows = []
    for cid in cases:
        sel = [r for r in rows if r["case"] == cid]
        line = [cid]
        for m in metrics:
            v = _finite([r.get(m) for r in sel])
            line.append(float(v.mean()) if v.size else None)
        dv = [(r.get("dice"), r["class"]) for r in sel if r.get("dice") is not None and math.isfinite(r["dice"])]
        low = min(dv) if dv else None
        line.append(f"{classes[low[1]]} ({low[0]:.3g})" if low else "")
        case_rows.append(line)
    case_html = _table(["case", *[f"mean {m}" for m in metrics], "worst class (dice)"], case_rows, text_cols=1)
    all_html = _table(["case", "class", *metrics],
                      [[r["case"], classes[r["class"]], *[r.get(m) for m in metrics]] for r in rows], text_cols=2)
    figures = "".join(
        f'<figure id="case-{html.escape(cid)}"><figcaption>{html.escape(cid)}</figcaption>'
        f'<img alt="{html.escape(cid)}: ground truth (top) and prediction (bottom), axial, coronal, sagittal" '
        f'src="data:image/png;base64,{base64.b64encode(images[cid]).decode()}"></figure>'
        for cid in cases if cid in images)
    notes_html = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style><script>{SORT_SCRIPT}</script></head><body>"
        f"<h1>{html.escape(title)}</h1>{notes_html}"
        f"<h2>Per class</h2>{summary_html}"
        f"<h2>Per case</h2><p class=\"note\">Click a column header to sort.</p>{case_html}"
        f"<h2>Overlays</h2><p class=\"note\">Each picture: ground truth (top row) and prediction (bottom row); "
        f"columns the slices across array axes 0, 1, 2 (axial, coronal, sagittal for an axial acquisition) "
        f"through the ground truth's centre of mass; filled classes with their contours; legend below.</p>"
        f"{figures}"
        f"<h2>Every case and class</h2>{all_html}"
        "</body></html>\n")
