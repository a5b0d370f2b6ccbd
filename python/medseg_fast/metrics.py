"""Segmentation metrics: overlap (Dice, IoU, accuracy, confusion matrix) and surface distances
(Hausdorff, HD95, average surface distance, surface Dice), all classes in one compiled call.

Surface metrics compute everything inside the bounding box of the union of both masks (exact:
every surface element lies in it), extract both surfaces once, find for every surface element
the exact distance to the other surface, and derive every requested statistic from the same
distances. The distances come from an exact nearest-neighbour search over the other surface's
elements (a cell grid, and a tree of cell boxes for elements far from it), or, when that search
would cost more, from an exact distance transform of the box; both return the minimum over the
other surface of ``((dz*s0)**2 + (dy*s1)**2) + (dx*s2)**2`` rounded in that order, so the result
does not depend on which one ran (nor on the thread count).

``convention`` selects whose definition is reproduced, including floating-point details:

* ``"monai"`` -- ``monai.metrics.compute_hausdorff_distance`` / ``compute_average_surface_distance``
  / ``compute_surface_dice``: surface = mask voxels with a 6-neighbour outside the mask (image
  border = background); distances in float32; HD percentile = ``torch.quantile`` (linear) of each
  direction, then the maximum of the two; ``percentile=None`` or ``0`` gives the maximum; symmetric
  ASD = mean of the pooled distances of both directions.
* ``"medpy"`` -- ``medpy.metric.binary.hd`` / ``hd95`` / ``asd`` / ``assd``: same voxel surfaces,
  float64; HD percentile = ``numpy.percentile`` of the pooled distances of both directions;
  symmetric ASD = mean of the pooled distances (``assd`` of MedPy 0.5).
* ``"deepmind"`` -- the surface-distance package (``compute_surface_distances`` with
  ``compute_robust_hausdorff`` / ``compute_average_surface_distance`` /
  ``compute_surface_dice_at_tolerance``): surface elements on the grid of voxel corners weighted
  by their area (contour length in 2-D); HD percentile = area-weighted nearest rank per direction,
  then the maximum; symmetric ASD = mean of the two area-weighted directed means.

Empty masks (``pred`` / ``gt`` without any voxel of the class) give:

============================  ==============  ==============  ==============
statistic                     convention      one mask empty  both empty
============================  ==============  ==============  ==============
hausdorff (max)               monai           inf             nan
hausdorff (percentile)        monai           nan             nan
average_surface_distance      monai           inf             nan
surface_dice                  monai           0.0             nan
hausdorff (any)               medpy           nan [1]_        nan [1]_
average_surface_distance      medpy           nan [1]_        nan [1]_
hausdorff (any)               deepmind        inf             inf
average_surface_distance      deepmind        nan [2]_        nan
surface_dice                  deepmind        0.0             nan
dice, iou                     (all)           0.0             ``empty`` (nan)
============================  ==============  ==============  ==============

.. [1] MedPy raises ``RuntimeError`` for an empty mask; here the value is nan so that a batch
   evaluation never stops.
.. [2] The surface-distance package returns ``(nan, inf)``; their mean is nan. Directed
   (``symmetric=False``) gives inf when ``gt`` is empty and nan when ``pred`` is empty.

Argument order is always ``(pred, gt)``; ``directed=True`` measures from ``pred`` to ``gt``.
Inputs may be numpy arrays, torch tensors or cupy arrays; CUDA inputs are copied to the host
once (the surface kernels run on the CPU).

One module of ~660 lines on purpose: every public metric shares the same argument checks, class
selection, layouts (``layout='bc'``) and the one compiled surface call, and users look them up in one
place (``medseg_fast.metrics.X``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Real
from typing import Any

import numpy as np

from . import _backend as B
from . import _ext
from . import _validate as V

__all__ = [
    "CONVENTIONS",
    "dice",
    "iou",
    "pixel_accuracy",
    "confusion_matrix",
    "mean_iou",
    "hausdorff",
    "average_surface_distance",
    "surface_dice",
    "evaluate",
]

CONVENTIONS = ("monai", "medpy", "deepmind")
# Largest K of confusion_matrix / mean_iou: the K x K int64 table is then 32 GiB.
MAX_CONFUSION_CLASSES = 2**16
# How surface distances are found: "auto" (nearest-neighbour search over the other surface, the
# exact EDT of the union box when the search would cost more), or one of them forced. Every path
# gives bit-identical results; tests force each one ("auto-small-budget": the search gives up
# early and falls back to the EDT).
_SURFACE_PATHS = ("auto", "nearest", "edt", "auto-small-budget")
_surface_path = "auto"
# The bound types of the surface kernel (they run on the CPU for every input).
_K = _ext.cpu_module()
_STAT_HD = _K.SurfaceStat.hausdorff
_STAT_ASD = _K.SurfaceStat.average_distance
_STAT_NSD = _K.SurfaceStat.surface_dice


# ----------------------------------------------------------------------------- validation
def _convention(convention: Any):
    """The bound Convention of a convention name."""
    return _K.Convention.__members__[V.choice(convention, "convention", CONVENTIONS)]


def _percentile(percentile: Any) -> float:
    return V.percentile(percentile, "percentile")


def _tolerance(tolerance: Any) -> float:
    if isinstance(tolerance, (bool, np.bool_, str, bytes)):
        raise TypeError(f"tolerance must be a finite number >= 0 (mm), got {tolerance!r}")
    try:
        t = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be a finite number >= 0 (mm), got {tolerance!r}") from None
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"tolerance must be a finite number >= 0 (mm), got {tolerance!r}")
    return t


def _host(v: B.ArrayView, name: str) -> B.ArrayView:
    """CUDA arrays are copied to the host once (the metric kernels run on the CPU)."""
    if v.device != "cuda":
        return v
    obj = v.obj.detach().cpu().numpy() if v.kind == "torch" else v.obj.get()
    return B.view(obj, name)


def _as_kernel_dtype(v: B.ArrayView, name: str, binary: bool) -> B.ArrayView:
    if v.dtype in ("float16", "bfloat16", "float32", "float64"):
        arr = np.asarray(v.obj) if v.kind == "numpy" else v.obj.numpy()
        if binary:
            return B.view(arr != 0, name)
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold integer labels, got non-integer values in dtype={v.dtype}")
        return B.view(arr.astype(np.int64), name)
    return v


def _pair(pred: Any, gt: Any, *, binary: bool) -> tuple[B.ArrayView, B.ArrayView]:
    pv = B.view(pred, "pred")
    gv = B.view(gt, "gt")
    B.check_same_device(pv, gv, "pred", "gt")
    B.check_same_shape(pv, gv, "pred", "gt")
    pv, gv = _host(pv, "pred"), _host(gv, "gt")
    if pv.kind == "torch":
        pv = B.view(pv.obj.numpy() if pv.dtype != "bfloat16" else pv.obj.float().numpy(), "pred")
        gv = B.view(gv.obj.numpy() if gv.dtype != "bfloat16" else gv.obj.float().numpy(), "gt")
    return _as_kernel_dtype(pv, "pred", binary), _as_kernel_dtype(gv, "gt", binary)


def _three_axes(v: B.ArrayView) -> tuple[list[int], list[int], B.ArrayView]:
    """Shape and strides as 3 axes (leading size-1 axes added; more than 3 axes flattened)."""
    if v.ndim > 3:
        # An explicit leading size: reshape(-1, ...) is ambiguous (ValueError) for empty inputs.
        lead = int(np.prod(v.shape[:-2], dtype=np.int64))
        arr = np.ascontiguousarray(v.obj).reshape((lead,) + tuple(v.shape[-2:]))
        v = B.view(arr, "x")
    return V.pad3(v.shape, 1), V.pad3(v.strides, 0), v


_classes = V.classes


def _single_pair_ndim(pred: Any, gt: Any, fn: str) -> None:
    """Overlap metrics take one case: more than 3 axes would pool a batch into one number."""
    for name, x in (("pred", pred), ("gt", gt)):
        shape = getattr(x, "shape", None)
        if shape is None:
            shape = np.shape(x)
        if len(shape) > 3:
            raise ValueError(
                f"{fn} scores one case: {name} must have 1 to 3 axes (a mask or label map), got "
                f"shape={tuple(shape)}; for MONAI's (B, C, *spatial) one-hot layout pass layout='bc' "
                "(one value per batch item and channel), otherwise score each case separately"
            )


def _bc_counts(pred: Any, gt: Any, include_background: Any, fn: str) -> np.ndarray:
    """(B, C, 3) counts |P|, |G|, |P & G| of (B, C, *spatial) one-hot (nonzero = in) inputs."""
    if not isinstance(include_background, (bool, np.bool_)):
        raise TypeError(f"include_background must be a bool, got {type(include_background).__name__}")
    pv, gv = _pair(pred, gt, binary=True)
    if not 3 <= pv.ndim <= 5:
        raise ValueError(f"{fn} with layout='bc' needs (B, C, *spatial) inputs with 1 to 3 spatial axes, "
                         f"got shape={pv.shape}")
    b, c = pv.shape[:2]
    p = np.asarray(pv.obj, dtype=bool).reshape(b, c, -1)
    g = np.asarray(gv.obj, dtype=bool).reshape(b, c, -1)
    if not include_background:
        p, g = p[:, 1:], g[:, 1:]
    return np.stack([np.count_nonzero(p, axis=2), np.count_nonzero(g, axis=2),
                     np.count_nonzero(p & g, axis=2)], axis=2).astype(np.int64)


def _layout(layout: Any, classes: Any) -> bool:
    if layout is None:
        return False
    if layout != "bc":
        raise ValueError(f"layout must be None (one case) or 'bc' (MONAI's (B, C, *spatial) one-hot), got {layout!r}")
    if classes is not None:
        raise ValueError("classes cannot be combined with layout='bc': the channels are the classes")
    return True


def _empty_value(empty: Any) -> float:
    if isinstance(empty, (bool, np.bool_)) or not isinstance(empty, (Real, np.integer, np.floating)):
        raise TypeError(f"empty must be a number (nan allowed), got {type(empty).__name__} {empty!r}")
    return float(empty)


def _counts(pred: Any, gt: Any, classes: list[int] | None) -> np.ndarray:
    pv, gv = _pair(pred, gt, binary=classes is None)
    shape, ps, pv = _three_axes(pv)
    _, gs, gv = _three_axes(gv)
    if pv.size == 0:
        return np.zeros((1 if classes is None else len(classes), 3), np.int64)
    return _ext.cpu_module().class_counts(shape, B.describe(pv, ps), B.describe(gv, gs), classes is None,
                                          classes or [])


def _surface_call(pred: Any, gt: Any, spacing: Any, convention: Any, queries: list[tuple],
                  classes: list[int] | None) -> np.ndarray:
    pv, gv = _pair(pred, gt, binary=classes is None)
    if not 1 <= pv.ndim <= 3:
        raise ValueError(f"pred and gt must be 1-D, 2-D or 3-D for surface metrics (one case, no batch or "
                         f"channel axis; score each case and class separately), got shape={pv.shape}")
    if convention == _K.Convention.deepmind and pv.ndim < 2:
        raise ValueError(f"convention='deepmind' needs 2-D or 3-D masks, got shape={pv.shape}")
    sp = V.spacing(spacing, pv.ndim, what="mask")
    shape, ps, pv = _three_axes(pv)
    _, gs, gv = _three_axes(gv)
    k = 1 if classes is None else len(classes)
    if pv.size == 0:
        raise ValueError(f"pred and gt must not be empty arrays, got shape={pv.shape}")
    spacing3 = V.pad3(sp, 1.0)
    config = _K.SurfaceMetricsConfig(
        active=len(sp), binary=classes is None, classes=classes or [], spacing=spacing3, convention=convention,
        queries=[_K.SurfaceQuery(stat=s, percentile=p, directed=d, tolerance=t) for s, p, d, t in queries],
        path=_K.SurfacePath.__members__[_surface_path.replace("-", "_")])
    return _K.surface_metrics(shape, B.describe(pv, ps), B.describe(gv, gs), config)[:k]


# ----------------------------------------------------------------------------- overlap metrics
def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    out = np.full(num.shape, float(empty), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def dice(
    pred: Any,
    gt: Any,
    *,
    classes: Sequence[int] | None = None,
    empty: float = float("nan"),
    layout: str | None = None,
    include_background: bool = True,
) -> Any:
    """Dice coefficient ``2 |P ∩ G| / (|P| + |G|)``.

    One case at a time: ``pred`` and ``gt`` are binary masks (nonzero = foreground) or, with
    ``classes``, label maps, of the same shape with 1 to 3 axes. More axes raise ValueError
    rather than pooling a batch into one number; a leading channel axis is not recognised (a
    (C, H, W) one-hot array is read as a 3-D mask, background channel included), so pass
    MONAI's (B, C, *spatial) layout with ``layout="bc"``.

    Empty masks: 0.0 when exactly one of ``pred`` and ``gt`` is empty, whichever it is (an
    empty ground truth with a non-empty prediction gives 0.0, as does the reverse); ``empty``
    when both are.

    Parameters
    ----------
    pred, gt : array
        Binary masks or label maps of the same shape (see above).
    classes : sequence of int, optional
        Distinct non-negative label values to score; returns one value per class.
    empty : float
        Value when both masks are empty, and only then (MONAI ``DiceMetric(ignore_empty=True)``
        and the surface-distance package give nan; MedPy's ``dc`` gives 0).
    layout : {None, "bc"}
        ``"bc"``: ``pred`` and ``gt`` are (B, C, *spatial) one-hot (or binarised) arrays with 1 to
        3 spatial axes, each (batch item, channel) pair is scored on its own and a (B, C) array
        comes back, as ``monai.metrics.compute_dice`` gives (equal to it with
        ``ignore_empty=False`` when ``empty=1.0``; with ``ignore_empty=True`` MONAI also gives
        nan when only ``gt`` is empty, where this gives 0).
    include_background : bool
        With ``layout="bc"``, ``False`` leaves out channel 0 (MONAI's ``include_background``).

    Returns
    -------
    float or numpy.ndarray
        A float for binary masks, a float64 array of ``len(classes)`` values with ``classes``,
        a (B, C) float64 array with ``layout="bc"``.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import metrics
    >>> metrics.dice(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    0.6666666666666666
    """
    empty_f = _empty_value(empty)
    if _layout(layout, classes):
        c = _bc_counts(pred, gt, include_background, "dice").astype(np.float64)
        return _ratio(2.0 * c[..., 2], c[..., 0] + c[..., 1], empty_f)
    _single_pair_ndim(pred, gt, "dice")
    ks = None if classes is None else _classes(classes)
    c = _counts(pred, gt, ks).astype(np.float64)
    values = _ratio(2.0 * c[:, 2], c[:, 0] + c[:, 1], empty_f)
    return float(values[0]) if ks is None else values


def iou(
    pred: Any,
    gt: Any,
    *,
    classes: Sequence[int] | None = None,
    empty: float = float("nan"),
    layout: str | None = None,
    include_background: bool = True,
) -> Any:
    """Intersection over union (Jaccard index) ``|P ∩ G| / |P ∪ G|``.

    Same arguments, layout rules and return values as :func:`dice` (``layout="bc"`` matches
    ``monai.metrics.compute_iou``).

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import metrics
    >>> metrics.iou(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    0.5
    """
    empty_f = _empty_value(empty)
    if _layout(layout, classes):
        c = _bc_counts(pred, gt, include_background, "iou").astype(np.float64)
        return _ratio(c[..., 2], c[..., 0] + c[..., 1] - c[..., 2], empty_f)
    _single_pair_ndim(pred, gt, "iou")
    ks = None if classes is None else _classes(classes)
    c = _counts(pred, gt, ks).astype(np.float64)
    values = _ratio(c[:, 2], c[:, 0] + c[:, 1] - c[:, 2], empty_f)
    return float(values[0]) if ks is None else values


def confusion_matrix(pred: Any, gt: Any, num_classes: int) -> np.ndarray:
    """Confusion matrix ``C[g, p]`` = number of voxels with true label g predicted as p.

    Labels outside ``[0, num_classes)`` (in either map) are not counted. Rows are the ground
    truth, columns the prediction (scikit-learn's convention). Any shape: the counts pool every
    voxel (a batch gives the dataset-level matrix), as do :func:`pixel_accuracy` and
    :func:`mean_iou`.

    Parameters
    ----------
    pred, gt : array
        Integer label maps of the same shape (float maps must hold integer values).
    num_classes : int
        Number of classes K, ``1 <= K <= 65536``.

    Returns
    -------
    numpy.ndarray
        int64 array of shape (K, K).

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import metrics
    >>> metrics.confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2)
    array([[1, 1],
           [0, 1]])
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"num_classes must be a positive integer, got {type(num_classes).__name__} {num_classes!r}")
    if not 1 <= num_classes <= MAX_CONFUSION_CLASSES:
        raise ValueError(f"num_classes must be in 1..{MAX_CONFUSION_CLASSES} (a K x K table), got {num_classes!r}")
    pv, gv = _pair(pred, gt, binary=False)
    shape, ps, pv = _three_axes(pv)
    _, gs, gv = _three_axes(gv)
    if pv.size == 0:
        return np.zeros((num_classes, num_classes), np.int64)
    return _ext.cpu_module().confusion_matrix(shape, B.describe(pv, ps), B.describe(gv, gs), int(num_classes))


def pixel_accuracy(pred: Any, gt: Any) -> float:
    """Fraction of voxels whose predicted label equals the true label (nan for empty arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import metrics
    >>> metrics.pixel_accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]))
    0.75
    """
    pv, gv = _pair(pred, gt, binary=False)
    if pv.size == 0:
        return float("nan")
    lo = min(int(np.min(pv.obj)), int(np.min(gv.obj)))
    hi = max(int(np.max(pv.obj)), int(np.max(gv.obj)))
    if hi - lo < 4096:
        # Equality counted as the trace of the confusion matrix of the shifted labels.
        p = pv.obj if lo == 0 else pv.obj.astype(np.int64) - lo
        g = gv.obj if lo == 0 else gv.obj.astype(np.int64) - lo
        cm = confusion_matrix(p, g, hi - lo + 1)
        return float(np.trace(cm)) / pv.size
    return float(np.count_nonzero(np.asarray(pv.obj) == np.asarray(gv.obj))) / pv.size


def mean_iou(pred: Any, gt: Any, num_classes: int, ignore_absent: bool = True) -> float:
    """Mean over classes ``0..K-1`` of the IoU, from one confusion matrix.

    Parameters
    ----------
    pred, gt : array
        Integer label maps.
    num_classes : int
        K; labels outside ``[0, K)`` are not counted.
    ignore_absent : bool
        Leave out classes absent from both maps (no union); otherwise they count as IoU 1
        (MONAI ``MeanIoU(ignore_empty=False)``: empty prediction of an empty class is perfect).

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import metrics
    >>> metrics.mean_iou(np.array([0, 1, 1]), np.array([0, 0, 1]), 3)
    0.5
    """
    ignore_absent = V.flag(ignore_absent, "ignore_absent")
    cm = confusion_matrix(pred, gt, num_classes).astype(np.float64)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    values = _ratio(inter, union, 1.0)
    if ignore_absent:
        values = values[union > 0]
    return float(values.mean()) if values.size else float("nan")


# ----------------------------------------------------------------------------- surface metrics
def hausdorff(
    pred: Any,
    gt: Any,
    spacing: float | Sequence[float] | None = None,
    *,
    percentile: float | None = None,
    directed: bool = False,
    convention: str = "monai",
) -> float:
    """(Percentile) Hausdorff distance between the surfaces of two binary masks, in mm.

    Parameters
    ----------
    pred, gt : array
        Binary masks (nonzero = foreground) of the same 1-D, 2-D or 3-D shape.
    spacing : float or sequence of float, optional
        Voxel spacing per axis, array axis order. Default 1.
    percentile : float in [0, 100], optional
        ``None``: the maximum distance; 95 gives HD95 (see the module docstring for how each
        convention defines it).
    directed : bool
        Only distances from the surface of ``pred`` to the surface of ``gt``.
    convention : {"monai", "medpy", "deepmind"}

    Returns
    -------
    float
        See the module docstring for empty masks.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import metrics
    >>> a = np.zeros((8, 8), bool); a[2:5, 2:5] = True
    >>> b = np.zeros((8, 8), bool); b[2:5, 3:6] = True
    >>> metrics.hausdorff(a, b, spacing=(1.0, 0.5))
    0.5
    """
    conv = _convention(convention)
    p = _percentile(percentile)
    out = _surface_call(pred, gt, spacing, conv, [(_STAT_HD, p, V.flag(directed, "directed"), 0.0)], None)
    return float(out[0, 5])


def average_surface_distance(
    pred: Any,
    gt: Any,
    spacing: float | Sequence[float] | None = None,
    *,
    symmetric: bool = True,
    convention: str = "monai",
) -> float:
    """Average surface distance (ASSD when ``symmetric``), in mm.

    ``symmetric=False`` averages the distances from the surface of ``pred`` to that of ``gt``
    (MONAI's default, MedPy's ``asd(pred, gt)``); ``symmetric=True`` is MONAI's
    ``symmetric=True`` (pooled mean), MedPy's ``assd`` and the mean of the surface-distance
    package's two directed averages, according to ``convention``.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import metrics
    >>> a = np.zeros((8, 8), bool); a[2:5, 2:5] = True
    >>> metrics.average_surface_distance(a, a)
    0.0
    """
    conv = _convention(convention)
    out = _surface_call(pred, gt, spacing, conv, [(_STAT_ASD, -1.0, not V.flag(symmetric, "symmetric"), 0.0)], None)
    return float(out[0, 5])


def surface_dice(
    pred: Any,
    gt: Any,
    tolerance: float,
    spacing: float | Sequence[float] | None = None,
    *,
    convention: str = "deepmind",
) -> float:
    """Surface Dice (normalised surface distance) at ``tolerance`` mm.

    The fraction of both surfaces lying within ``tolerance`` of the other surface. The default
    convention, ``"deepmind"``, weights surface elements by their area
    (``compute_surface_dice_at_tolerance``); ``"monai"`` and ``"medpy"`` count surface voxels
    (``monai.metrics.compute_surface_dice`` with ``use_subvoxels=False``).

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import metrics
    >>> a = np.zeros((8, 8, 8), bool); a[2:5, 2:5, 2:5] = True
    >>> metrics.surface_dice(a, a, tolerance=1.0)
    1.0
    """
    conv = _convention(convention)
    tol = _tolerance(tolerance)
    out = _surface_call(pred, gt, spacing, conv, [(_STAT_NSD, -1.0, False, tol)], None)
    return float(out[0, 5])


_EVAL_METRICS = ("dice", "iou", "hd", "hd95", "assd", "asd", "surface_dice")


def _metric_query(name: str, tolerance: float | None) -> tuple | None:
    if not isinstance(name, str):
        return None
    if name == "hd":
        return (_STAT_HD, -1.0, False, 0.0)
    if name.startswith("hd") and name[2:].replace(".", "", 1).isdigit():
        p = float(name[2:])
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"metrics: {name!r} asks for the {p:g}th percentile Hausdorff distance; "
                             "expected 'hdP' with P in [0, 100] (e.g. 'hd95')")
        return (_STAT_HD, p, False, 0.0)
    if name == "assd":
        return (_STAT_ASD, -1.0, False, 0.0)
    if name == "asd":
        return (_STAT_ASD, -1.0, True, 0.0)
    if name == "surface_dice":
        if tolerance is None:
            raise ValueError("metrics contains 'surface_dice', so tolerance (mm) must be given")
        return (_STAT_NSD, -1.0, False, _tolerance(tolerance))
    return None


def evaluate(
    pred_labels: Any,
    gt_labels: Any,
    classes: Sequence[int],
    spacing: float | Sequence[float] | None = None,
    metrics: Sequence[str] = ("dice", "iou", "hd95", "assd"),
    *,
    convention: str = "monai",
    tolerance: float | None = None,
    empty: float = float("nan"),
) -> list[dict]:
    """Metrics of every class of two label maps in one compiled call.

    One pass finds each class's voxel counts and the bounding box of its union; then, per class
    and in parallel over classes, both surfaces are extracted once inside that box and one set of
    surface-to-surface distances per direction serves every surface metric requested.

    Parameters
    ----------
    pred_labels, gt_labels : array
        Integer label maps of the same 1-D, 2-D or 3-D shape (one case; no batch or channel axis).
    classes : sequence of int
        Distinct non-negative label values to evaluate (rows come back in this order).
    spacing : float or sequence of float, optional
        Voxel spacing per axis (array axis order).
    metrics : sequence of str
        Any of ``"dice"``, ``"iou"``, ``"hd"`` (maximum), ``"hdP"`` for a percentile P (``"hd95"``),
        ``"assd"`` (symmetric), ``"asd"`` (pred to gt), ``"surface_dice"`` (needs ``tolerance``).
    convention : {"monai", "medpy", "deepmind"}
        Definition of the surface metrics (see the module docstring).
    tolerance : float, optional
        Surface Dice tolerance in mm.
    empty : float
        Dice / IoU when the class is absent from both maps.

    Returns
    -------
    list of dict
        One dict per class: ``{"class": c, <metric>: value, ...}``, floats.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg_fast import metrics
    >>> gt = np.zeros((6, 6, 6), np.uint8); gt[1:4, 1:4, 1:4] = 1; gt[4:, 4:, 4:] = 2
    >>> rows = metrics.evaluate(gt, gt, classes=[1, 2])
    >>> [(r["class"], r["dice"], r["hd95"]) for r in rows]
    [(1, 1.0, 0.0), (2, 1.0, 0.0)]
    """
    conv = _convention(convention)
    _single_pair_ndim(pred_labels, gt_labels, "evaluate")
    ks = _classes(classes)
    empty = _empty_value(empty)
    if not isinstance(metrics, (str, Iterable)):
        raise TypeError(f"metrics must be a metric name or a sequence of names, got {type(metrics).__name__}")
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise ValueError(f"metrics must name at least one metric from {_EVAL_METRICS}, got {metrics!r}")
    queries: list[tuple] = []
    columns: list[tuple[str, int]] = []
    for name in names:
        if name in ("dice", "iou"):
            columns.append((name, -1))
            continue
        q = _metric_query(name, tolerance)
        if q is None:
            raise ValueError(f"metrics must name metrics from {_EVAL_METRICS} (or 'hdP' for a percentile P), "
                             f"got {name!r}")
        columns.append((name, len(queries)))
        queries.append(q)
    if not ks:
        # no class to score: still refuse what would be refused with classes (kind, shape, dtype)
        pv, _ = _pair(pred_labels, gt_labels, binary=False)
        if queries:
            V.spacing(spacing, pv.ndim, what="mask")
        return []
    if queries:
        table = _surface_call(pred_labels, gt_labels, spacing, conv, queries, ks)
        counts = table[:, :3]
    else:
        counts = _counts(pred_labels, gt_labels, ks).astype(np.float64)
        table = None
    dice_values = _ratio(2.0 * counts[:, 2], counts[:, 0] + counts[:, 1], empty)
    iou_values = _ratio(counts[:, 2], counts[:, 0] + counts[:, 1] - counts[:, 2], empty)
    rows = []
    for i, c in enumerate(ks):
        row: dict = {"class": c}
        for name, qi in columns:
            if name == "dice":
                row[name] = float(dice_values[i])
            elif name == "iou":
                row[name] = float(iou_values[i])
            else:
                row[name] = float(table[i, 5 + qi])
        rows.append(row)
    return rows
