"""Connected components and segmentation postprocessing.

Labels are numbered 1..N in raster (C) order of each component's first voxel, which is
``scipy.ndimage.label``'s numbering, on the CPU and the GPU and for any thread count.

The CPU labeler is run-based: rows are cut into runs of equal foreground value, runs are merged
with a union-find whose root is always the smallest index, slabs of rows in parallel, the slab
faces afterwards. The runs then produce every result directly (labels, kept components, holes,
sizes), so postprocessing never materializes a label volume it does not return. The CUDA labeler
is a voxel union-find (Playne & Hawick 2018) with the same root rule, followed by a prefix sum
over the roots for the numbering.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np

from . import _backend as B
from . import _ext
from . import _validate as V
from ._components_prep import _cuda_label, _out_desc, _Prepared, _runs, _zeros_or_empty
from ._meta import keeps_meta
from ._typing import Array, ArrayLike
from .resampling import _label_range

__all__ = [
    "label",
    "component_stats",
    "largest_component",
    "remove_small_components",
    "keep_largest_per_class",
    "fill_holes",
]


# ----------------------------------------------------------------------------- label
@keeps_meta
def label(x: ArrayLike, connectivity: int | None = None, *, background: int = 0, return_num: bool = False) -> Any:
    """Label the connected components of a 2-D or 3-D mask or label map.

    Parameters
    ----------
    x : array (numpy, torch CPU/CUDA or cupy), bool or integer, 2-D or 3-D
        Voxels different from `background` are foreground. With an integer input each value is
        labeled separately (neighbouring voxels join only if their values are equal), in one pass.
    connectivity : int, optional
        3-D: 6 (faces), 18 (faces + edges) or 26 (faces + edges + corners); 2-D: 4 or 8.
        Default: full connectivity, 26 in 3-D and 8 in 2-D.
    background : int, keyword-only
        The value that is not labeled (default 0).
    return_num : bool, keyword-only
        Also return the number of components.

    Returns
    -------
    labels : int32 array of x's shape, kind and device
        Components numbered 1..N in raster order of their first voxel (scipy.ndimage.label's
        numbering), 0 on the background; identical on CPU and GPU and for any thread count.
    num : int
        N, if `return_num`.

    Raises
    ------
    TypeError
        For a floating-point input (threshold it first).
    ValueError
        For ndim other than 2 or 3, or a connectivity that does not fit the dimensionality.
    OverflowError
        If there are more than 2**31 - 1 components.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1, 0, 1], [0, 0, 1]], dtype=bool)
    >>> label(x, connectivity=4, return_num=True)
    (array([[1, 0, 2],
           [0, 0, 2]], dtype=int32), 2)
    """
    return_num = V.flag(return_num, "return_num")
    p = _Prepared(x, connectivity, "x", background)
    if p.view.device == "cuda":
        out, n = _cuda_label(p)
    else:
        out, zeroed = _zeros_or_empty(p, "int32")
        n = 0
        if not p.empty:
            runs = _runs(p)
            runs.write_labels(_out_desc(out, p.ndim), zeroed)
            n = int(runs.count)
    return (out, n) if return_num else out


# ----------------------------------------------------------------------------- statistics
def _dense_label_limit(size: int) -> int:
    """Largest label value whose tables component_stats indexes by value (see its docstring)."""
    return max(int(size), DENSE_LABEL_LIMIT)


DENSE_LABEL_LIMIT = 2**20


def component_stats(
    labels: ArrayLike, spacing: float | Sequence[float] | None = None, *, compact: bool = False
) -> dict[str, np.ndarray]:
    """Size, volume, bounding box and centroid of every label of a label image.

    Parameters
    ----------
    labels : array, bool or non-negative integer, 2-D or 3-D
        A label image, e.g. the output of :func:`label`. GPU inputs are copied to the host.
    spacing : float or sequence of float, optional
        Voxel size per axis in the array's axis order (mm); default 1.
    compact : bool
        ``False`` (default): rows are indexed by label value ``0..labels.max()``, as
        ``cc3d.statistics`` does; this needs ``labels.max() <= max(labels.size, 2**20)``
        (always true for :func:`label` output), larger maxima raise ValueError instead of
        allocating tables for absent labels. ``True``: one row per distinct value present,
        in increasing order, the values returned as ``labels`` (any label values, e.g. sparse
        ids up to ``2**64 - 1``; like ``scipy.ndimage`` statistics with an explicit ``index``).

    Returns
    -------
    dict of numpy arrays, one row per label (index 0 is the background unless ``compact``):
        ``sizes`` (int64 voxel counts), ``volumes_mm3`` (float64), ``bboxes`` (int64,
        (L + 1, 2 * ndim): start indices then exclusive stop indices, zeros for absent labels),
        ``centroids`` (float64, (L + 1, ndim), in voxel index coordinates, NaN for absent labels),
        and with ``compact=True`` ``labels`` (the value of each row, in ``labels``' dtype).
        The same conventions as ``cc3d.statistics`` (which gives bounding boxes as slices).

    Examples
    --------
    >>> import numpy as np
    >>> s = component_stats(np.array([[0, 1, 1], [2, 0, 0]]))
    >>> s["sizes"].tolist(), s["bboxes"][1].tolist()
    ([3, 2, 1], [0, 1, 1, 3])
    """
    lv = B.view(labels, "labels")
    if lv.dtype in B.FLOAT_NAMES:
        raise TypeError(f"labels must be a bool or integer array, got dtype={lv.dtype}")
    if lv.ndim not in (2, 3):
        raise ValueError(f"labels must be a 2-D or 3-D array, got ndim={lv.ndim} (shape={lv.shape})")
    if not isinstance(compact, (bool, np.bool_)):
        raise TypeError(f"compact must be a bool, got {type(compact).__name__}")
    sp = _spacing(spacing, lv.ndim)
    if lv.kind != "numpy":
        host = lv.obj.detach().cpu().numpy() if lv.kind == "torch" else lv.obj.get()
        lv = B.view(host, "labels")
    ndim = lv.ndim
    values = None
    if lv.size == 0:
        max_label = 0
        if compact:
            values = np.zeros(0, lv.obj.dtype)
    else:
        lo, max_label = _label_range(lv)
        if lo < 0:
            raise ValueError(f"labels must be non-negative, got a minimum of {lo}")
        if compact:
            values, inverse = np.unique(lv.obj, return_inverse=True)
            lv = B.view(inverse.reshape(lv.shape).astype(np.int64, copy=False), "labels")
            max_label = len(values) - 1
        elif max_label > _dense_label_limit(lv.size):
            raise ValueError(
                f"labels has a maximum value of {max_label}: tables indexed by label value are limited to "
                f"max(labels.size, 2**20) = {_dense_label_limit(lv.size)} rows; pass compact=True for one row per "
                "distinct value, or renumber the labels (label(), np.unique(..., return_inverse=True))"
            )
    if lv.size == 0:
        counts = np.zeros(1, np.int64)
        mins = np.full((1, 3), np.iinfo(np.int64).max, np.int64)
        maxs = np.full((1, 3), -1, np.int64)
        sums = np.zeros((1, 3), np.float64)
    else:
        shape3, strides3 = V.pad3(lv.shape, 1), V.pad3(lv.strides, 0)
        counts, mins, maxs, sums = _ext.module_for(lv.device).label_statistics(shape3, (lv.ptr, lv.dtype, strides3), max_label)
    axes = slice(3 - ndim, 3)
    present = counts > 0
    bboxes = np.zeros((len(counts), 2 * ndim), np.int64)
    bboxes[present, :ndim] = mins[present][:, axes]
    bboxes[present, ndim:] = maxs[present][:, axes] + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = sums[:, axes] / counts[:, None]
    centroids[~present] = np.nan
    result = {
        "sizes": counts,
        "volumes_mm3": counts * math.prod(sp),
        "bboxes": bboxes,
        "centroids": centroids,
    }
    if values is not None:
        rows = len(values)
        result = {key: value[:rows] for key, value in result.items()}
        result["labels"] = values
    return result


def _spacing(spacing: Any, ndim: int) -> tuple[float, ...]:
    # Voxel volumes (products of up to 3 values) must stay finite and nonzero: V.SPACING_RANGE.
    return V.spacing(spacing, ndim)


# ----------------------------------------------------------------------------- postprocessing
def _filtered_cpu(p: _Prepared, runs, keep: np.ndarray) -> Any:
    out, zeroed = _zeros_or_empty(p, p.view.dtype)
    runs.write_filtered(_out_desc(out, p.ndim), np.ascontiguousarray(keep, dtype=np.uint8), zeroed)
    return out


def _copy_or_empty(p: _Prepared) -> Any:
    out = B.allocate(p.view, p.view.shape, p.view.dtype)
    return out


class _GpuComponents:
    """GPU postprocessing on a label image: sizes by bincount, tables applied by gathering."""

    def __init__(self, p: _Prepared):
        self.p = p
        self.labels, self.count = _cuda_label(p)
        self.kind = p.view.kind
        if self.kind == "torch":
            import torch

            self.xp = torch
            self.flat = self.labels.reshape(-1).long()
        else:
            import cupy

            self.xp = cupy
            self.flat = self.labels.ravel()

    def sizes(self) -> np.ndarray:
        if self.kind == "torch":
            return self.xp.bincount(self.flat, minlength=self.count + 1).cpu().numpy()
        return self.xp.bincount(self.flat, minlength=self.count + 1).get()

    def values(self) -> np.ndarray:
        """The input value of each component (index 0: background)."""
        x = self.p.view.obj
        if self.kind == "torch":
            vals = self.xp.zeros(self.count + 1, dtype=x.dtype, device=x.device)
            vals[self.flat] = x.reshape(-1)
            return vals.cpu().numpy()
        vals = self.xp.zeros(self.count + 1, dtype=x.dtype)
        vals[self.flat] = x.ravel()
        return vals.get()

    def filtered(self, keep: np.ndarray) -> Any:
        x = self.p.view.obj
        table = B.to_kind(self.p.view, np.ascontiguousarray(keep, dtype=bool))
        mask = table[self.labels.long() if self.kind == "torch" else self.labels]
        if self.kind == "torch":
            return self.xp.where(mask, x, self.xp.full((), self.p.background, dtype=x.dtype, device=x.device))
        return self.xp.where(mask, x, self.xp.asarray(self.p.background, dtype=x.dtype))


def _largest_k_table(sizes: np.ndarray, k: int) -> np.ndarray:
    keep = np.zeros(len(sizes), np.uint8)
    if k > 0 and len(sizes) > 1:
        order = np.argsort(-sizes[1:], kind="stable") + 1   # ties: lower label (earlier first voxel) first
        keep[order[:k]] = 1
    return keep


@keeps_meta
def largest_component(x: Array, k: int = 1, connectivity: int | None = None, *, background: int = 0) -> Array:
    """Keep the `k` largest connected components, set everything else to `background`.

    Parameters
    ----------
    x : array, bool or integer, 2-D or 3-D
        A mask or label map (integer values are labeled separately, like :func:`label`).
    k : int
        How many components to keep (>= 0). Ties in size are broken in favour of the component
        whose first voxel comes first in raster order (the lower label of :func:`label`).
    connectivity : int
        As in :func:`label`.
    background : int, keyword-only
        The background value.

    Returns
    -------
    array of x's dtype, shape, kind and device
        x where a kept component lies, `background` elsewhere. Equals ``cc3d.largest_k(x, k) > 0``
        applied to x when no tie straddles the k-th place.

    Examples
    --------
    >>> import numpy as np
    >>> largest_component(np.array([[1, 0, 1, 1]], dtype=bool), connectivity=4)
    array([[False, False,  True,  True]])
    """
    if isinstance(k, bool) or not isinstance(k, (Integral, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    p = _Prepared(x, connectivity, "x", background)
    if p.empty:
        return _copy_or_empty(p)
    if p.view.device == "cuda":
        g = _GpuComponents(p)
        return g.filtered(_largest_k_table(g.sizes(), int(k)))
    runs = _runs(p)
    return _filtered_cpu(p, runs, _largest_k_table(runs.sizes(), int(k)))


@keeps_meta
def remove_small_components(
    x: Array, min_size: float, *, spacing: float | Sequence[float] | None = None, connectivity: int | None = None, background: int = 0
) -> Array:
    """Remove the components smaller than `min_size` (voxels, or mm³ when `spacing` is given).

    Parameters
    ----------
    x : array, bool or integer, 2-D or 3-D
        A mask or label map (integer values are labeled separately).
    min_size : float
        Components with fewer voxels (or a smaller volume in mm³ with `spacing`) are removed;
        components of exactly `min_size` stay (as ``cc3d.dust``).
    spacing : float or sequence of float, optional, keyword-only
        Voxel size in mm per axis, in the array's axis order.
    connectivity : int, keyword-only
        As in :func:`label`.
    background : int, keyword-only
        The background value; removed components are set to it.

    Returns
    -------
    array of x's dtype, shape, kind and device

    Examples
    --------
    >>> import numpy as np
    >>> remove_small_components(np.array([[1, 0, 2, 2]], dtype=np.uint8), 2, connectivity=4)
    array([[0, 0, 2, 2]], dtype=uint8)
    """
    if isinstance(min_size, bool) or not isinstance(min_size, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(min_size)) or min_size < 0:
        raise ValueError(f"min_size must be a finite number >= 0, got {min_size!r}")
    p = _Prepared(x, connectivity, "x", background)
    voxel = math.prod(_spacing(spacing, p.ndim)) if spacing is not None else 1.0
    if p.empty:
        return _copy_or_empty(p)
    if p.view.device == "cuda":
        g = _GpuComponents(p)
        sizes = g.sizes()
    else:
        runs = _runs(p)
        sizes = runs.sizes()
    keep = (sizes * voxel >= float(min_size)).astype(np.uint8)
    keep[0] = 0
    return g.filtered(keep) if p.view.device == "cuda" else _filtered_cpu(p, runs, keep)


@keeps_meta
def keep_largest_per_class(
    labelmap: Array, classes: Sequence[int] | None = None, connectivity: int | None = None, *, background: int = 0
) -> Array:
    """Keep only the largest connected component of each class of a label map.

    Parameters
    ----------
    labelmap : array, bool or integer, 2-D or 3-D
        Class labels; `background` is not a class.
    classes : sequence of int, optional
        The classes to process (default: every class present). Other classes are kept as they are.
    connectivity : int
        As in :func:`label`.
    background : int, keyword-only
        The value removed components are set to.

    Returns
    -------
    array of labelmap's dtype, shape, kind and device
        Ties in size keep the component whose first voxel comes first in raster order. Equals
        MONAI ``KeepLargestConnectedComponent(applied_labels=classes, independent=True)`` when
        there are no ties.

    Examples
    --------
    >>> import numpy as np
    >>> keep_largest_per_class(np.array([[1, 0, 1, 1, 2, 0, 2]]), connectivity=4)
    array([[0, 0, 1, 1, 2, 0, 0]])
    """
    p = _Prepared(labelmap, connectivity, "labelmap", background)
    if classes is not None:
        classes_arr = np.asarray(V.classes(classes, allow_negative=True), dtype=np.int64)
    if p.empty:
        return _copy_or_empty(p)
    if p.view.device == "cuda":
        g = _GpuComponents(p)
        sizes, values = g.sizes(), g.values()
    else:
        runs = _runs(p)
        sizes = runs.sizes()
        first = runs.first_voxels()
        values = _values_at(p, first)
    values = values.astype(np.int64) if values.dtype != np.uint64 else values
    n = len(sizes) - 1
    keep = np.ones(n + 1, np.uint8)
    keep[0] = 0
    if n > 0:
        comp = np.arange(1, n + 1)
        vals = values[1:]
        selected = np.ones(n, bool) if classes is None else np.isin(vals, classes_arr)
        # Among selected components, the largest of each value (stable: lowest label wins ties).
        order = np.lexsort((comp, -sizes[1:], vals))
        sv = vals[order]
        first_of_value = np.ones(n, bool)
        first_of_value[1:] = sv[1:] != sv[:-1]
        best = np.zeros(n, bool)
        best[order[first_of_value]] = True
        keep[1:] = np.where(selected, best, True)
    return g.filtered(keep) if p.view.device == "cuda" else _filtered_cpu(p, runs, keep)


def _values_at(p: _Prepared, first: np.ndarray) -> np.ndarray:
    """Input values at linear (C-order) voxel indices (first[0] is ignored: background)."""
    obj = p.view.obj
    arr = obj.numpy() if p.view.kind == "torch" else np.asarray(obj)
    out = np.zeros(len(first), arr.dtype)
    if len(first) > 1:
        idx = np.unravel_index(first[1:], arr.shape)
        out[1:] = arr[idx]
    return out


@keeps_meta
def fill_holes(x: Array, connectivity: int | None = None) -> Array:
    """Fill the holes of a mask: background regions not connected to the array border.

    Parameters
    ----------
    x : array, bool or integer, 2-D or 3-D
        Nonzero voxels are foreground.
    connectivity : int, optional
        Connectivity of the background: 6 / 18 / 26 in 3-D, 4 / 8 in 2-D. Default: face
        connectivity (6 in 3-D, 4 in 2-D), with which the result equals
        ``scipy.ndimage.binary_fill_holes(x)``.

    Returns
    -------
    bool array of x's shape, kind and device

    Examples
    --------
    >>> import numpy as np
    >>> m = np.ones((3, 3), bool); m[1, 1] = False
    >>> bool(fill_holes(m)[1, 1])
    True
    """
    p = _Prepared(x, connectivity, "x", 0, full_default=False)
    out = B.allocate(p.view, p.view.shape, "bool")
    if p.empty:
        return out
    if p.view.device == "cuda":
        xo = p.view.obj
        inverted = (xo == 0)
        q = _Prepared(inverted, p.connectivity, "x", 0)
        labels, n = _cuda_label(q)
        border = _gpu_border_labels(labels, n, p.ndim)
        table = np.ones(n + 1, bool)
        table[border] = False
        table[0] = True
        dev = B.to_kind(p.view, table)
        return dev[labels.long() if p.view.kind == "torch" else labels]
    runs = _runs(p, invert=True)
    flags = runs.border_flags(p.ndim == 3)
    keep = (flags == 0).astype(np.uint8)
    runs.write_mask(_out_desc(out, p.ndim), keep, 1)
    return out


def _gpu_border_labels(labels: Any, n: int, ndim: int) -> np.ndarray:
    faces = []
    for axis in range(ndim):
        for index in (0, -1):
            sl = [slice(None)] * ndim
            sl[axis] = index
            faces.append(labels[tuple(sl)].reshape(-1))
    if hasattr(labels, "cpu"):
        import torch

        return torch.unique(torch.cat(faces)).cpu().numpy()
    import cupy

    return cupy.unique(cupy.concatenate(faces)).get()
