"""MONAI metric classes (``CumulativeIterationMetric`` subclasses) on the compiled metric kernels.

``DiceMetric``, ``MeanIoU``, ``HausdorffDistanceMetric``, ``SurfaceDistanceMetric`` and
``SurfaceDiceMetric`` keep MONAI's constructor, ``aggregate``/``reset``/``get_buffer`` and
reductions (they are MONAI's own, inherited); only the per-iteration computation
(``_compute_tensor``) is replaced:

* overlap metrics count ``|P|``, ``|G|`` and ``|P & G|`` of every (batch item, class) at once
  (the class-count kernel for label maps, one vectorised count for one-hot inputs);
* surface metrics put every (batch item, class) of the iteration into one label volume (batch
  items stacked along the first spatial axis, each (item, class) its own label) and make one
  call of the surface kernel, which extracts each class's surfaces once inside its bounding
  box and derives every statistic from one set of exact distances (``convention="monai"`` of
  :mod:`medseg_fast.metrics`: MONAI's surfaces, float32 distances, ``torch.quantile``
  percentiles).

Cases the kernels do not express -- ``ignore_index``, ``per_component``, ``distance_metric``
other than ``"euclidean"``, ``use_subvoxels=True``, non-binary one-hot values, more than three
spatial axes -- and every invalid input run MONAI's own code, so results and error messages
are MONAI's. MONAI's warnings for empty classes are raised the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

import monai.metrics as _mm
import numpy as np
import torch
from monai.data import MetaTensor
from monai.metrics.utils import prepare_spacing

from .. import _backend as B
from .. import _ext
from .. import metrics as _k
from ._common import plain

__all__ = ["DiceMetric", "MeanIoU", "HausdorffDistanceMetric", "SurfaceDistanceMetric", "SurfaceDiceMetric"]


def _host(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _channels(a: np.ndarray, channels: list[int]) -> np.ndarray:
    """(B, K, N) view (a copy only for strided inputs) of the channels of a (B, C, *spatial) array."""
    lo, hi = channels[0], channels[-1] + 1
    v = a[:, lo:hi] if channels == list(range(lo, hi)) else a[:, channels]
    return v.reshape(v.shape[0], v.shape[1], -1)


def _nonzero(v: np.ndarray) -> np.ndarray:
    """C-ordered boolean mask of nonzero values (MONAI's ``.bool()`` reading of y_pred); C order
    also for channels-last inputs, so that the per-channel counts read contiguous rows."""
    return np.ascontiguousarray(v) if v.dtype == np.bool_ else np.not_equal(v, 0, order="C")


def _ones(v: np.ndarray) -> np.ndarray | None:
    """Boolean mask of ``v == 1`` when v holds only 0 and 1 (MONAI then sums the values as
    counts), else None. NaN is neither."""
    if v.dtype == np.bool_:
        return np.ascontiguousarray(v)
    one = np.equal(v, 1, order="C")
    if np.count_nonzero(one) + np.count_nonzero(np.equal(v, 0)) != v.size:
        return None
    return one


class _OneHot:
    """The compiled one-pass reading of channels ``lo..hi-1`` of a (B, C, *spatial) tensor:
    ``counts`` (B, K, 3) = [nonzero, equal to 1, zero], and with ``labels`` the (B, N) int32 label
    map b * K + k + 1 of the channel equal to 1 (``exclusive``: no voxel has two such channels).
    ``float32_ones``: float64 values compare with 1 after rounding to float32, as MONAI's
    surface-distance metrics do."""

    def __init__(self, t: torch.Tensor, lo: int, hi: int, *, labels: bool, float32_ones: bool = False) -> None:
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()           # exact; the kernel reads float32
        a = _host(t)
        b, n = a.shape[0], int(np.prod(a.shape[2:], dtype=np.int64))
        a3 = a.reshape(b, a.shape[1], n)
        if n > 1 and a3.strides[2] != a3.itemsize:
            a3 = np.ascontiguousarray(a3)
        sub = a3[:, lo:hi]
        self.shape = (b, hi - lo, n)
        self.counts, lab, conflicts = _ext.cpu_module().onehot_summary(
            list(self.shape), B.describe(B.view(sub, "y")), float32_ones, labels)
        self.labels = lab if labels else None
        self.exclusive = labels and not bool(np.any(conflicts))

    @property
    def binary(self) -> bool:
        """Every value 0 or 1."""
        return bool(np.all(self.counts[..., 1] + self.counts[..., 2] == self.shape[2]))


def _label_intersections(p: _OneHot, g: _OneHot) -> np.ndarray:
    """(B, K) voxels where both exclusive label maps hold the same (item, channel) label."""
    same = p.labels[(p.labels == g.labels) & (p.labels > 0)]
    b, k = p.shape[:2]
    return np.bincount(same, minlength=b * k + 1)[1:].reshape(b, k)


def _label_map(t: torch.Tensor) -> np.ndarray | None:
    """(B, *spatial) int64 labels of a (B, 1, *spatial) map holding integer values, else None."""
    m = t[:, 0]
    if m.is_floating_point():
        if not bool(torch.all(m == torch.round(m))):
            return None
    return _host(m).astype(np.int64, copy=False)


def _map_counts(labels: np.ndarray, channels: list[int]) -> np.ndarray:
    """(B, K) voxel counts of each channel value in each item's label map."""
    out = np.zeros((labels.shape[0], len(channels)), np.int64)
    ch = np.asarray(channels)
    for b in range(labels.shape[0]):
        flat = labels[b].ravel()
        valid = flat[(flat >= 0) & (flat <= ch.max())] if ch.size else flat[:0]
        out[b] = np.bincount(valid, minlength=int(ch.max()) + 1 if ch.size else 0)[ch] if ch.size else 0
    return out


def _cross_counts(labels: np.ndarray, masks: np.ndarray, channels: list[int]) -> np.ndarray:
    """(B, K) counts of voxels whose label is ``channels[k]`` and where ``masks[:, k]`` is set
    (``masks``: (B, K, N) for consecutive ``channels``)."""
    B, K = masks.shape[:2]
    out = np.zeros((B, K), np.int64)
    lo = channels[0]
    for b in range(B):
        idx = labels[b].reshape(-1) - lo
        ok = (idx >= 0) & (idx < K)
        idx = np.where(ok, idx, 0)
        hit = np.take_along_axis(masks[b], idx[None], axis=0)[0] & ok
        out[b] = np.bincount(idx[hit], minlength=K)
    return out


def _overlap_counts(y_pred: torch.Tensor, y: torch.Tensor, channels: list[int]) -> np.ndarray | None:
    """(B, K, 3) int64 [|P|, |G|, |P & G|] with MONAI's reading of each side (label map when it
    has one channel: voxel == c; one-hot otherwise: nonzero for y_pred, the value for y), or
    None when the fast path does not apply (non-integer maps, non-binary one-hot ground truth)."""
    pred_map = y_pred.shape[1] == 1
    gt_map = y.shape[1] == 1
    if not pred_map and max(channels) >= y_pred.shape[1]:
        return None
    if not gt_map and max(channels) >= y.shape[1]:
        return None
    if channels != list(range(channels[0], channels[-1] + 1)):
        return None
    if not pred_map and not gt_map:   # binary one-hot on both sides: the compiled reading
        both = _binary_onehot_counts(y_pred, y, channels[0], channels[-1] + 1)
        if both is not None:
            return both
    gmask = None if gt_map else _ones(_channels(_host(y), channels))
    if not gt_map and gmask is None:
        return None
    pm = _label_map(y_pred) if pred_map else None
    gm = _label_map(y) if gt_map else None
    if (pred_map and pm is None) or (gt_map and gm is None):
        return None
    B, K = int(y_pred.shape[0]), len(channels)
    counts = np.zeros((B, K, 3), np.int64)
    if pred_map and gt_map:
        if y_pred.ndim <= 5:
            for b in range(B):
                counts[b] = _k._counts(pm[b], gm[b], channels)
        else:   # more than three spatial axes: numpy counts
            counts[..., 0] = _map_counts(pm, channels)
            counts[..., 1] = _map_counts(gm, channels)
            counts[..., 2] = _map_counts(np.where(pm == gm, pm, -1), channels)
        return counts
    pmask = None if pred_map else _nonzero(_channels(_host(y_pred), channels))
    counts[..., 0] = _map_counts(pm, channels) if pmask is None else np.count_nonzero(pmask, axis=2)
    counts[..., 1] = _map_counts(gm, channels) if gmask is None else np.count_nonzero(gmask, axis=2)
    if pmask is not None and gmask is not None:
        counts[..., 2] = np.count_nonzero(pmask & gmask, axis=2)
    elif pmask is not None:
        counts[..., 2] = _cross_counts(gm, pmask, channels)
    else:
        counts[..., 2] = _cross_counts(pm, gmask, channels)
    return counts


def _binary_onehot_counts(y_pred: torch.Tensor, y: torch.Tensor, lo: int, hi: int) -> np.ndarray | None:
    """(B, K, 3) [|P|, |G|, |P & G|] of channels lo..hi-1 of two one-hot tensors holding only 0
    and 1, from the compiled reading (the intersection from the label maps when both sides'
    channels are exclusive, from the masks otherwise); None when either side holds other values
    (MONAI's products then)."""
    p = _OneHot(y_pred, lo, hi, labels=True)
    g = _OneHot(y, lo, hi, labels=True) if p.binary else None
    if g is None or not g.binary:
        return None
    counts = np.empty(p.shape[:2] + (3,), np.int64)
    counts[..., 0] = p.counts[..., 1]
    counts[..., 1] = g.counts[..., 1]
    if p.exclusive and g.exclusive:
        counts[..., 2] = _label_intersections(p, g)
    else:
        channels = list(range(lo, hi))
        counts[..., 2] = np.count_nonzero(_ones(_channels(_host(y_pred), channels))
                                          & _ones(_channels(_host(y), channels)), axis=2)
    return counts


def _like_monai(out: torch.Tensor, y_pred: torch.Tensor, y: torch.Tensor, sliced: bool) -> torch.Tensor:
    """``out`` as MONAI's overlap metrics return it: a MetaTensor carrying the meta of ``y`` when
    it is a MetaTensor, else of ``y_pred``, else a plain tensor. ``sliced``: the meta of the first
    (item, channel) slice (DiceMetric works on slices; MeanIoU on whole tensors)."""
    src = y if isinstance(y, MetaTensor) else y_pred if isinstance(y_pred, MetaTensor) else None
    if src is None:
        return out
    res = MetaTensor(out)
    res.copy_meta_from(src[0, 0] if sliced else src)
    return res


def _result_dtype(*ts: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in ts) else torch.float32


class DiceMetric(_mm.DiceMetric):
    """``monai.metrics.DiceMetric`` with every (batch item, class) count from one pass.

    Same arguments and results as MONAI's (including ``num_classes`` with label-map inputs and
    ``ignore_empty``: with ``ignore_empty=True`` a class whose ground truth is empty gives NaN
    whatever the prediction; with ``False`` it gives 1.0 when the prediction is empty too and
    0.0 otherwise). Counts are exact integers; MONAI sums float32 ground truths, which loses
    exactness above 2**24 voxels per class. ``per_component`` and ``ignore_index`` run MONAI's code.

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.monai import DiceMetric
    >>> metric = DiceMetric(include_background=False)
    >>> p = torch.zeros(1, 2, 4, 4); p[:, 1, :2] = 1; p[:, 0] = 1 - p[:, 1]
    >>> _ = metric(p, p)
    >>> float(metric.aggregate())
    1.0
    """

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if (y_pred.ndimension() < 3 or self.per_component or self.ignore_index is not None or y is None
                or y.ndim != y_pred.ndim or y.shape[0] != y_pred.shape[0] or y.shape[2:] != y_pred.shape[2:]
                or y.dtype == torch.float16 or y.dtype == torch.bfloat16):
            return super()._compute_tensor(y_pred, y)
        n_ch = y_pred.shape[1] if self.num_classes is None else self.num_classes
        first = 0 if self.include_background else 1
        channels = list(range(first, n_ch)) if n_ch > 1 else [1]
        if not channels:
            return super()._compute_tensor(y_pred, y)
        counts = _overlap_counts(plain(y_pred), plain(y), channels)
        if counts is None:
            return super()._compute_tensor(y_pred, y)
        dtype = torch.float64 if (y.shape[1] > 1 and y.dtype == torch.float64) else torch.float32
        c = torch.from_numpy(counts)
        p, g, i = c[..., 0], c[..., 1], c[..., 2]
        num = (2 * i).to(dtype)
        den = (g + p).to(dtype)
        empty = torch.full_like(num, float("nan")) if self.ignore_empty else \
            torch.where(den <= 0, torch.ones_like(num), torch.zeros_like(num))
        dice = torch.where(g > 0, num / torch.where(den > 0, den, torch.ones_like(den)), empty)
        return _like_monai(dice.to(y.device), y_pred, y, sliced=True)


class MeanIoU(_mm.MeanIoU):
    """``monai.metrics.MeanIoU`` with every (batch item, class) count from one pass.

    Same arguments and results as MONAI's (``ignore_empty=True``: NaN where the ground truth is
    empty; ``False``: 1.0 where both are empty). Binary one-hot inputs of equal shape take the
    fast path; ``ignore_index`` and non-binary values run MONAI's code.
    """

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if (y_pred.ndimension() < 3 or self.ignore_index is not None or y is None or y.shape != y_pred.shape
                or y.dtype in (torch.float16, torch.bfloat16) or y_pred.dtype in (torch.float16, torch.bfloat16)):
            return super()._compute_tensor(y_pred, y)
        meta_src = (y_pred, y)
        y_pred, y = plain(y_pred), plain(y)
        C = y_pred.shape[1]
        first = 1 if (not self.include_background and C > 1) else 0
        if first >= C:
            return super()._compute_tensor(*meta_src)
        counts = _binary_onehot_counts(y_pred, y, first, C)
        if counts is None:      # values other than 0 and 1: MONAI's products
            return super()._compute_tensor(*meta_src)
        c = torch.from_numpy(counts)
        p, g, i = c[..., 0], c[..., 1], c[..., 2]
        dtype = _result_dtype(y_pred, y)
        union = (g + p - i).to(dtype)
        ratio = i.to(dtype) / torch.where(union > 0, union, torch.ones_like(union))
        if self.ignore_empty:
            out = torch.where(g > 0, ratio, torch.full_like(ratio, float("nan")))
        else:
            out = torch.where(union > 0, ratio, torch.ones_like(ratio))
        return _like_monai(out.to(y.device), *meta_src, sliced=False)


# ----------------------------------------------------------------------------- surface metrics
def _surface_masks(y_pred: torch.Tensor, y: torch.Tensor, include_background: bool,
                   as_float: bool) -> tuple[np.ndarray, np.ndarray]:
    """MONAI's reading as C-ordered (B, C, N) boolean arrays: background channel dropped (when
    C > 1), foreground = values equal to 1 -- after conversion to float32 when ``as_float``
    (Hausdorff and surface distance convert; surface Dice compares the values as they are)."""
    if not include_background:
        y_pred = y_pred[:, 1:] if y_pred.shape[1] > 1 else y_pred
        y = y[:, 1:] if y.shape[1] > 1 else y

    def mask(t: torch.Tensor) -> np.ndarray:
        if t.dtype == torch.bool:
            a = np.ascontiguousarray(_host(t))
        else:
            if (as_float and t.dtype == torch.float64) or t.dtype == torch.bfloat16:
                t = t.float()          # MONAI's float32 rounding first (integers: exact either way)
            a = np.equal(_host(t), 1, order="C")
        return a.reshape(a.shape[0], a.shape[1], -1)

    return mask(y_pred), mask(y)


def _stacked_labels(masks: np.ndarray, spatial: tuple, channel: int | None) -> np.ndarray:
    """One int32 label volume of (B, C, N) masks: items stacked along the first spatial axis,
    label = item * C + c + 1 (channels exclusive); with ``channel``: that channel, label = item + 1."""
    B, C = masks.shape[:2]
    u = masks.view(np.uint8)
    if channel is not None:
        lab = u[:, channel].astype(np.int32)
        lab *= np.arange(1, B + 1, dtype=np.int32)[:, None]
    else:
        small = np.uint8 if C < 255 else np.int32
        code = np.zeros((B, u.shape[2]), small)
        tmp = np.empty_like(code)
        for c in range(C):           # exclusive channels: at most one term is nonzero
            np.multiply(u[:, c], small(c + 1), out=tmp)
            code += tmp
        lab = code.astype(np.int32)
        if B > 1:
            lab += np.where(code > 0, (np.arange(B, dtype=np.int32) * C)[:, None], 0).astype(np.int32)
    return lab.reshape((B * spatial[0],) + tuple(spatial[1:]))


def _surface_values(y_pred: torch.Tensor, y: torch.Tensor, include_background: bool, spacing: Any,
                    queries: list[tuple], as_float: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """((B, C, len(queries)) values, (B, C, 3) counts) of the surface kernel, or raise LookupError
    when the layout is not one the kernel takes (MONAI's code then runs)."""
    y_pred, y = plain(y_pred), plain(y)
    B, sdim = int(y_pred.shape[0]), y_pred.ndim - 2
    spatial = tuple(int(v) for v in y_pred.shape[2:])
    if not 1 <= sdim <= 3 or B == 0 or y_pred.shape[1] == 0 or 0 in spatial:
        raise LookupError
    spacings = prepare_spacing(spacing=spacing, batch_size=B, img_dim=sdim)
    sp = [None if s is None else tuple(float(v) for v in np.broadcast_to(np.asarray(s, np.float64), (sdim,)))
          for s in spacings]
    groups = [list(range(B))] if all(s == sp[0] for s in sp) else [[b] for b in range(B)]
    lo = 1 if (not include_background and y_pred.shape[1] > 1) else 0
    C = int(y_pred.shape[1]) - lo
    values = np.empty((B, C, len(queries)))
    counts = np.empty((B, C, 3))
    # MONAI's foreground: values equal to 1 (float64 rounded to float32 first when as_float)
    po = _OneHot(y_pred, lo, lo + C, labels=True, float32_ones=as_float)
    go = _OneHot(y, lo, lo + C, labels=True, float32_ones=as_float)
    if po.exclusive and go.exclusive:      # one label volume per side: one kernel call per group
        for items in groups:
            nb = len(items)
            pl, gl = po.labels[items], go.labels[items]
            if nb < B:                     # a single item b: labels b * C + c + 1 -> c + 1
                shift = np.int32(items[0] * C)
                pl, gl = np.where(pl > 0, pl - shift, 0), np.where(gl > 0, gl - shift, 0)
            shape = (nb * spatial[0],) + spatial[1:]
            table = _k._surface_call(pl.reshape(shape), gl.reshape(shape), sp[items[0]], _k._convention("monai"),
                                     queries, list(range(1, nb * C + 1)))
            values[items] = table[:, 5:].reshape(nb, C, -1)
            counts[items] = table[:, :3].reshape(nb, C, 3)
        return values, counts
    pm, gm = _surface_masks(y_pred, y, include_background, as_float)

    def at_most_one(m: np.ndarray) -> bool:   # at most one channel set in every voxel
        return bool((m.view(np.uint8).sum(axis=1, dtype=np.uint8) <= 1).all())

    exclusive = C == 1 or (C < 255 and at_most_one(pm) and at_most_one(gm))
    for items in groups:
        p_sub, g_sub = (pm, gm) if len(items) == B else (pm[items], gm[items])
        nb = len(items)
        chans = [None] if exclusive else list(range(C))
        for ch in chans:
            table = _k._surface_call(_stacked_labels(p_sub, spatial, ch), _stacked_labels(g_sub, spatial, ch),
                                     sp[items[0]], _k._convention("monai"), queries,
                                     list(range(1, nb * (C if ch is None else 1) + 1)))
            if ch is None:
                values[items] = table[:, 5:].reshape(nb, C, -1)
                counts[items] = table[:, :3].reshape(nb, C, 3)
            else:
                values[items, ch] = table[:, 5:]
                counts[items, ch] = table[:, :3]
    return values, counts


def _warn_empty(counts: np.ndarray, offset: int) -> None:
    """MONAI's warnings for an empty ground truth / prediction, in MONAI's order."""
    for b, c in np.ndindex(counts.shape[0], counts.shape[1]):
        if counts[b, c, 1] == 0:
            warnings.warn(f"the ground truth of class {c + offset} is all 0, this may result in nan/inf distance.",
                          stacklevel=4)
        if counts[b, c, 0] == 0:
            warnings.warn(f"the prediction of class {c + offset} is all 0, this may result in nan/inf distance.",
                          stacklevel=4)


def _out(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(values.astype(np.float32)).to(like.device)


def _surface_ok(metric: Any, y_pred: torch.Tensor, y: torch.Tensor | None) -> bool:
    return (y is not None and y_pred.dim() >= 3 and metric.distance_metric == "euclidean"
            and metric.ignore_index is None and y.shape == y_pred.shape)


class HausdorffDistanceMetric(_mm.HausdorffDistanceMetric):
    """``monai.metrics.HausdorffDistanceMetric``: all (batch item, class) pairs in one kernel call.

    Same arguments (``include_background``, ``distance_metric``, ``percentile``, ``directed``,
    ``reduction``, ``get_not_nans``, ``ignore_index``; ``spacing`` at call time) and values as
    MONAI's: surfaces of the voxels equal to 1, exact Euclidean distances in float32, the
    percentile as ``torch.quantile`` of each direction, then the larger. Empty classes give
    MONAI's values (inf when only one side is empty, NaN when both are) and warnings.
    ``distance_metric`` "chessboard"/"taxicab" and ``ignore_index`` run MONAI's code.
    """

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        p = self.percentile
        if not _surface_ok(self, y_pred, y) or (p and not 0 <= p <= 100):
            return super()._compute_tensor(y_pred, y, **kwargs)
        query = (_k._STAT_HD, float(p) if p else -1.0, bool(self.directed), 0.0)
        try:
            values, counts = _surface_values(y_pred, y, self.include_background, kwargs.get("spacing"), [query])
        except LookupError:
            return super()._compute_tensor(y_pred, y, **kwargs)
        _warn_empty(counts, 0 if self.include_background else 1)
        return _out(values[..., 0], y_pred)


class SurfaceDistanceMetric(_mm.SurfaceDistanceMetric):
    """``monai.metrics.SurfaceDistanceMetric``: all (batch item, class) pairs in one kernel call.

    Same arguments and values as MONAI's: the mean distance from the prediction's surface to the
    ground truth's (``symmetric=True``: of the pooled distances of both directions); NaN when
    both masks are empty, inf when one is. ``distance_metric`` other than "euclidean" and
    ``ignore_index`` run MONAI's code.
    """

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        if not _surface_ok(self, y_pred, y):
            return super()._compute_tensor(y_pred, y, **kwargs)
        query = (_k._STAT_ASD, -1.0, not self.symmetric, 0.0)
        try:
            values, counts = _surface_values(y_pred, y, self.include_background, kwargs.get("spacing"), [query])
        except LookupError:
            return super()._compute_tensor(y_pred, y, **kwargs)
        _warn_empty(counts, 0)      # MONAI names the class by its index after the background is dropped
        return _out(values[..., 0], y_pred)


class SurfaceDiceMetric(_mm.SurfaceDiceMetric):
    """``monai.metrics.SurfaceDiceMetric`` (normalised surface distance), one kernel call per iteration.

    Same arguments and values as MONAI's with ``use_subvoxels=False`` (surface voxels counted):
    per class the fraction of both surfaces within ``class_thresholds[c]`` of the other; NaN
    when both masks are empty. Foreground is the voxels equal to 1 in the input's own dtype (as
    MONAI compares them; the distance metrics compare after conversion to float32). ``use_subvoxels=True``, other distance metrics and
    ``ignore_index`` run MONAI's code.
    """

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        if not _surface_ok(self, y_pred, y) or self.use_subvoxels or y_pred.ndim not in (4, 5):
            return super()._compute_tensor(y_pred, y, **kwargs)
        C = y_pred.shape[1] - (1 if (not self.include_background and y_pred.shape[1] > 1) else 0)
        thr = self.class_thresholds
        try:
            t = np.asarray(thr, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return super()._compute_tensor(y_pred, y, **kwargs)
        if len(t) != C or not np.all(np.isfinite(t)) or np.any(t < 0):
            return super()._compute_tensor(y_pred, y, **kwargs)
        # MONAI compares float32 distances with the threshold as float32 (torch promotion).
        t32 = t.astype(np.float32).astype(np.float64)
        distinct, which = np.unique(t32, return_inverse=True)
        queries = [(_k._STAT_NSD, -1.0, False, float(v)) for v in distinct]
        try:
            values, counts = _surface_values(y_pred, y, self.include_background, kwargs.get("spacing"), queries,
                                             as_float=False)
        except LookupError:
            return super()._compute_tensor(y_pred, y, **kwargs)
        _warn_empty(counts, 0 if self.include_background else 1)
        picked = np.take_along_axis(values, which.reshape(1, -1, 1).repeat(values.shape[0], 0), axis=2)[..., 0]
        return _out(picked, y_pred)
