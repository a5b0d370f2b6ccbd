"""Overlay pictures of label maps: filled classes with their contours over the image, a legend of class names
and colours, and the three orthogonal views through the ground truth's centre of mass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["voc_colormap", "gray", "blend", "legend", "centre_of_mass", "orthogonal_views", "side_by_side"]


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: (n, 3) uint8, class 0 black, 1 dark red, 2 green, 3 olive, 4 navy, ..."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def gray(image: np.ndarray) -> np.ndarray:
    """uint8 display of an image: CT (air below -500 HU present) in the abdomen window 40/400 HU, otherwise its
    1-99 percentile range."""
    if image.size and image.min() < -500:
        lo, hi = -160.0, 240.0
    else:
        lo, hi = np.percentile(image, (1, 99)) if image.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1
    return (np.clip((image.astype(np.float32) - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def blend(gray2d: np.ndarray, labels: np.ndarray, cmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB of a 2-D slice: classes filled at ``alpha`` over the gray image, their contours in full colour."""
    rgb = np.repeat(gray2d[..., None], 3, -1).astype(np.float32)
    labels = labels.astype(np.int64)
    m = labels > 0
    rgb[m] = (1 - alpha) * rgb[m] + alpha * cmap[labels[m] % len(cmap)]
    edge = np.zeros_like(m)
    dz = labels[:-1] != labels[1:]
    edge[:-1] |= dz
    edge[1:] |= dz
    dy = labels[:, :-1] != labels[:, 1:]
    edge[:, :-1] |= dy
    edge[:, 1:] |= dy
    e = edge & m
    rgb[e] = cmap[labels[e] % len(cmap)]
    return rgb.astype(np.uint8)


def legend(names: Mapping[int, str], cmap: np.ndarray, width: int, *, font_size: int = 12) -> np.ndarray:
    """An RGB strip ``width`` pixels wide: a colour square and the name of each class, wrapped into rows."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=font_size)
    items = [(int(c), str(n)) for c, n in sorted(names.items()) if int(c) != 0]
    pad, box = 6, font_size
    rows: list[list[tuple[int, str, int]]] = [[]]
    x = pad
    for c, name in items:
        w = box + 4 + int(font.getlength(name)) + 2 * pad
        if rows[-1] and x + w > width:
            rows.append([])
            x = pad
        rows[-1].append((c, name, x))
        x += w
    line = font_size + 6
    im = Image.new("RGB", (max(width, 1), pad + line * len(rows) + pad if items else 1), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    for r, row in enumerate(rows):
        y = pad + r * line
        for c, name, x0 in row:
            colour = tuple(int(v) for v in cmap[c % len(cmap)])
            draw.rectangle([x0, y + 1, x0 + box, y + 1 + box], fill=colour, outline=(0, 0, 0))
            draw.text((x0 + box + 4, y), name, fill=(0, 0, 0), font=font)
    return np.asarray(im)


def centre_of_mass(mask: np.ndarray) -> tuple[int, ...]:
    """Index of the centre of mass of a mask's nonzero voxels (rounded); the array's centre when empty."""
    m = np.asarray(mask) != 0
    total = int(m.sum())
    if not total:
        return tuple(s // 2 for s in m.shape)
    out = []
    for a in range(m.ndim):
        prof = m.sum(axis=tuple(b for b in range(m.ndim) if b != a), dtype=np.int64)
        out.append(int(round(float((prof * np.arange(m.shape[a])).sum()) / total)))
    return tuple(min(max(v, 0), s - 1) for v, s in zip(out, m.shape))


def _scaled(rgb: np.ndarray, row_mm: float, col_mm: float, target: int) -> np.ndarray:
    """Resized (nearest) so that pixels are square in mm and the longer side is about ``target`` pixels."""
    from PIL import Image

    h_mm, w_mm = rgb.shape[0] * row_mm, rgb.shape[1] * col_mm
    scale = target / max(h_mm, w_mm, 1e-9)
    size = (max(1, int(round(w_mm * scale))), max(1, int(round(h_mm * scale))))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.NEAREST))


def side_by_side(panels: Sequence[np.ndarray], gap: int = 3, fill: int = 255) -> np.ndarray:
    """Panels next to each other (top-aligned), ``gap`` white columns between them."""
    h = max(p.shape[0] for p in panels)
    out = []
    for i, p in enumerate(panels):
        if p.shape[0] < h:
            p = np.concatenate([p, np.full((h - p.shape[0], *p.shape[1:]), fill, np.uint8)], 0)
        if i:
            out.append(np.full((h, gap, 3), fill, np.uint8))
        out.append(p)
    return np.concatenate(out, 1)


def _stack(rows: Sequence[np.ndarray], gap: int = 3, fill: int = 255) -> np.ndarray:
    w = max(r.shape[1] for r in rows)
    out = []
    for i, r in enumerate(rows):
        if r.shape[1] < w:
            r = np.concatenate([r, np.full((r.shape[0], w - r.shape[1], 3), fill, np.uint8)], 1)
        if i:
            out.append(np.full((gap, w, 3), fill, np.uint8))
        out.append(r)
    return np.concatenate(out, 0)


def _caption(rgb: np.ndarray, text: str) -> np.ndarray:
    """``text`` in white on a black box in the panel's top-left corner."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=11)
    w = int(font.getlength(text)) + 6
    draw.rectangle([0, 0, w, 14], fill=(0, 0, 0))
    draw.text((3, 1), text, fill=(255, 255, 255), font=font)
    return np.asarray(im)


VIEW_NAMES = ("axial", "coronal", "sagittal")


def orthogonal_views(pred: np.ndarray, gt: np.ndarray, image: np.ndarray | None, spacing: Sequence[float],
                     names: Mapping[int, str], *, size: int = 220) -> np.ndarray:
    """One RGB picture of a 3-D (z, y, x) case: top row the ground truth, bottom row the prediction, columns the
    slices across array axes 0, 1, 2 (axial, coronal, sagittal for an axial acquisition) through the ground
    truth's centre of mass; classes filled with their contours, square pixels; a legend of the classes seen."""
    cmap = voc_colormap()
    cz, cy, cx = centre_of_mass(gt)
    img = gray(image) if image is not None else np.zeros(gt.shape, np.uint8)
    sz, sy, sx = (float(s) for s in spacing)
    # (slicer, row spacing, column spacing, flip rows: higher z at the top of the coronal and sagittal views)
    views = [((cz, slice(None), slice(None)), sy, sx, False), ((slice(None), cy, slice(None)), sz, sx, True),
             ((slice(None), slice(None), cx), sz, sy, True)]
    rows = []
    for who, lab in (("ground truth", gt), ("prediction", pred)):
        panels = []
        for name, (sl, rmm, cmm, flip) in zip(VIEW_NAMES, views):
            rgb = blend(img[sl], lab[sl], cmap)
            panels.append(_caption(_scaled(rgb[::-1] if flip else rgb, rmm, cmm, size), f"{who}, {name}"))
        rows.append(side_by_side(panels))
    body = _stack(rows)
    present = {int(c) for v in views for lab in (gt, pred) for c in np.unique(lab[v[0]])}
    shown = {c: n for c, n in names.items() if int(c) in present or len(names) <= 24}
    return _stack([body, legend(shown, cmap, body.shape[1])]) if shown else body
