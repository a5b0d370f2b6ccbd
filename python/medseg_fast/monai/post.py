"""MONAI post-processing transforms on the compiled connected-component kernels.

``KeepLargestConnectedComponent``, ``RemoveSmallObjects`` and ``FillHoles`` (array and
dictionary forms) with MONAI's arguments, defaults and outputs. MONAI's ``connectivity`` counts
orthogonal hops (skimage); 1 / 2 / 3 hops are our 6 / 18 / 26 neighbours in 3-D (4 / 8 in 2-D).
Inputs with 2 or 3 spatial axes take the fast path; other layouts run MONAI's own code.
Unlike MONAI, which writes into a torch input's storage, the caller's input is never modified.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import monai
import monai.transforms as _mt
import numpy as np
import torch
from monai.data.meta_obj import get_track_meta
from monai.utils import convert_to_dst_type, convert_to_tensor, ensure_tuple_rep
from scipy import ndimage

from .. import _backend as B
from .. import _ext
from .. import components as _cc
from ._common import fresh, neighbours, plain

__all__ = [
    "KeepLargestConnectedComponent", "KeepLargestConnectedComponentd", "RemoveSmallObjects",
    "RemoveSmallObjectsd", "FillHoles", "FillHolesd",
]


def _integral_labels(x: torch.Tensor) -> torch.Tensor | None:
    """x as an integer tensor when it holds integer values (float label maps), else None."""
    if x.dtype == torch.bool or not (x.is_floating_point() or x.dtype.is_signed or x.dtype == torch.uint8):
        return x if x.dtype == torch.bool else None
    if not x.is_floating_point():
        return x
    if x.numel() and not bool(torch.all(x == torch.round(x))):
        return None
    return x.to(torch.int64)


def _unique_labels(x: torch.Tensor) -> list:
    """``sorted(set(unique(x)))`` as MONAI's ``get_unique_labels`` lists them (values, ascending)."""
    if x.dtype != torch.bool and not x.is_floating_point() and x.numel() and int(x.min()) >= 0 and int(x.max()) < 1 << 24:
        present = torch.bincount(x.reshape(-1).to(torch.int64).cpu())
        return torch.nonzero(present).reshape(-1).tolist()
    return torch.unique(x).tolist()


def _keep_table(counts: np.ndarray, k: int) -> np.ndarray:
    """MONAI's choice among components with sizes ``counts[1:]``: all when there are at most k,
    else ``argsort(counts)[::-1][:k]`` on the same int64 array MONAI builds (counts[0] = 0), so
    that ties go the way they go in MONAI."""
    keep = np.zeros(len(counts), bool)
    if len(counts) - 1 <= k:
        keep[1:] = True
        return keep
    c = counts.astype(np.int64, copy=True)
    c[0] = 0
    keep[np.argsort(c)[::-1][:k]] = True
    return keep


def _largest(fg: np.ndarray, conn: int, k: int) -> np.ndarray:
    """MONAI's ``get_largest_connected_component_mask`` of a boolean mask, compiled labelling."""
    labels = _cc.label(fg, connectivity=conn)
    return _keep_table(np.bincount(labels.ravel()), k)[labels]


class KeepLargestConnectedComponent(_mt.KeepLargestConnectedComponent):
    """``monai.transforms.KeepLargestConnectedComponent`` on the compiled labelling.

    Label maps with ``independent=True`` (MONAI's default) are labelled in one multi-label pass
    (each value's components separately, numbered in raster order as skimage numbers them);
    the components kept for each value are then chosen exactly as MONAI chooses them
    (``argsort`` of the same size array, so even ties agree). One-hot inputs and
    ``independent=False`` label each selected channel or union once. Float label maps with
    integer values are accepted, as in MONAI. Runs on the CPU (as MONAI without cuCIM); CUDA
    tensors come back on their device.
    """

    def __call__(self, img: Any) -> Any:
        shape = tuple(img.shape)
        conn = neighbours(self.connectivity, len(shape) - 1)
        if conn is None or len(shape) < 3:
            return super().__call__(fresh(img))
        is_onehot = shape[0] > 1 if self.is_onehot is None else self.is_onehot
        img = convert_to_tensor(img, track_meta=get_track_meta())
        x = plain(img).detach().cpu().numpy()
        k = int(self.num_components)
        out = x.copy()
        if not is_onehot:
            if shape[0] != 1:
                return super().__call__(fresh(img))
            lab_t = _integral_labels(torch.from_numpy(x[0]))
            if lab_t is None:
                return super().__call__(fresh(img))
            lab = lab_t.numpy()
            labels = self.applied_labels if self.applied_labels is not None else \
                [v for v in _unique_labels(lab_t) if v != 0]
            if self.independent:
                comps = _cc.label(lab, connectivity=conn)
                counts = np.bincount(comps.ravel())
                values = np.zeros(len(counts), lab.dtype)
                values[comps.ravel()] = lab.ravel()
                keep = np.ones(len(counts), bool)
                order = np.argsort(values[1:], kind="stable") + 1      # components grouped by value
                sorted_vals = values[order]
                for v in labels:
                    lo = np.searchsorted(sorted_vals, v, side="left")
                    hi = np.searchsorted(sorted_vals, v, side="right")
                    ids = order[lo:hi]                                  # ascending: raster order
                    if len(ids) > k:
                        keep[ids] = _keep_table(np.concatenate([[0], counts[ids]]), k)[1:]
                removed = ~keep[comps]
            else:
                # the labels in the input's dtype, as MONAI converts them (a float 1.5 matches no
                # integer value of a float label map; an out-of-range value raises as in MONAI)
                wanted = torch.as_tensor(labels, dtype=plain(img).dtype)
                fg = np.isin(lab, wanted.numpy())
                removed = fg & ~_largest(fg, conn, k)
            out[0][removed] = 0
            return convert_to_dst_type(out, dst=img)[0]
        labels = self.applied_labels if self.applied_labels is not None else \
            [i for i in range(1, shape[0]) if x[i].sum() > 0]
        if self.independent:
            for i in labels:
                fg = x[i] > 0
                out[i][fg & ~_largest(fg, conn, k)] = 0
        else:
            fg = (x[list(labels)] == 1).any(0)
            removed = fg & ~_largest(fg, conn, k)
            for i in labels:
                out[i][removed] = 0
        return convert_to_dst_type(out, dst=img)[0]


@functools.lru_cache(maxsize=1)
def _inclusive_threshold() -> bool:
    """Whether the installed skimage removes objects of exactly ``min_size`` voxels.

    MONAI passes ``min_size`` positionally; skimage 0.26 maps it to its new ``max_size``
    (objects ``<=`` it are removed), older versions remove objects ``<`` it.
    """
    from skimage import morphology

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return not bool(morphology.remove_small_objects(np.array([True, False]), 1, 1)[0])


class RemoveSmallObjects(_mt.RemoveSmallObjects):
    """``monai.transforms.RemoveSmallObjects`` (skimage's ``remove_small_objects`` rule), compiled.

    MONAI's rule, reproduced exactly: a binary input (maximum <= 1) loses its connected
    components smaller than ``min_size``; an integer label map (maximum > 1) is taken as already
    labelled, so each label *value* is one object (however many pieces it has) and values with
    fewer than ``min_size`` voxels are removed (with skimage >= 0.26, which MONAI's positional
    ``min_size`` reaches as ``max_size``, objects of exactly ``min_size`` voxels are removed too;
    the installed skimage's rule is followed). ``per_component=True`` (keyword-only, ours)
    instead removes each value's small connected components
    (:func:`medseg_fast.remove_small_components`). Multi-channel binary inputs are labelled by
    skimage across the channel axis as well; those run MONAI's code.
    """

    def __init__(self, *args: Any, per_component: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(per_component, (bool, np.bool_)):
            raise TypeError(f"per_component must be a bool, got {type(per_component).__name__}")
        self.per_component = bool(per_component)

    def _min_size(self, img: Any, sr: int) -> float:
        """MONAI's min_size in voxels (``by_measure``: volume / voxel volume, rounded up)."""
        if not self.by_measure:
            if self.pixdim is not None:
                warnings.warn("`pixdim` is specified but not in use when computing the volume.", stacklevel=3)
            return self.min_size
        if isinstance(img, monai.data.MetaTensor):
            pixdim = img.pixdim
        elif self.pixdim is not None:
            pixdim = ensure_tuple_rep(self.pixdim, sr)
        else:
            warnings.warn("`img` is not of type MetaTensor and `pixdim` is None, assuming affine to be identity.",
                          stacklevel=3)
            pixdim = (1.0,) * sr
        voxel_volume = np.prod(np.array(pixdim))
        if voxel_volume == 0:
            warnings.warn("Invalid `pixdim` value detected, set it to 1. Please verify the pixdim settings.",
                          stacklevel=3)
            voxel_volume = 1
        return np.ceil(self.min_size / voxel_volume)

    @staticmethod
    def _keep_from(min_size: float) -> float:
        """The smallest size that stays (remove_small_components keeps sizes >= it)."""
        return float(np.floor(min_size) + 1) if _inclusive_threshold() else float(min_size)

    @staticmethod
    def _remove_small_values(t: torch.Tensor, lo: Any, hi: Any, min_size: float) -> np.ndarray:
        """MONAI's per-value rule (each label value one object): values truncated to int (as
        ``astype(np.int32)``), those with too few voxels set to 0. Two compiled passes (value
        counts, then a value table) for finite, non-negative CPU maps below 2**26; numpy's
        bincount and a gather otherwise (negative values: MONAI's error)."""
        lo_f, hi_f = float(lo), float(hi)
        compiled = (t.device.type == "cpu" and t.dtype not in (torch.float16, torch.bfloat16, torch.bool)
                    and math.isfinite(lo_f) and math.isfinite(hi_f) and int(lo_f) >= 0 and hi_f < 2 ** 26)
        if compiled:
            x = t.detach().numpy()
            flat = x.reshape(-1) if x.flags.c_contiguous else x     # one long row: fewer, longer tiles
            xv = B.view(flat, "img")
            cpu = _ext.cpu_module()
            sizes = cpu.value_counts(list(flat.shape), B.describe(xv), int(hi_f))
        else:
            lab = t.cpu().numpy().astype(np.int32)
            if lab.min() < 0:
                raise ValueError("Negative value labels are not supported. Try relabeling the input with "
                                 "`scipy.ndimage.label` or `skimage.morphology.label`.")
            sizes = np.bincount(lab.ravel())
        if len(sizes) == 2:
            warnings.warn("Only one label was provided to `remove_small_objects`. "
                          "Did you mean to use a boolean array?", UserWarning, stacklevel=3)
        small = sizes <= min_size if _inclusive_threshold() else sizes < min_size
        if compiled:
            table = np.arange(len(sizes), dtype=np.float64)
            table[small] = 0
            out = np.empty(flat.shape, x.dtype)
            cpu.apply_value_table(list(flat.shape), B.describe(xv), table,
                                  B.describe(B.view(out, "out", writable=True)))
            return out.reshape(x.shape)
        # one gather through a value table in the output's dtype (no copy, mask or cast pass)
        dtype = t.numpy().dtype if t.device.type == "cpu" and t.dtype != torch.bool else np.int32
        table = np.arange(len(sizes), dtype=dtype)
        table[small] = 0
        return table[lab]

    def __call__(self, img: Any) -> Any:
        if not isinstance(img, (torch.Tensor, np.ndarray)) or img.ndim < 3 or isinstance(self.connectivity, bool) \
                or not isinstance(self.connectivity, (int, np.integer)) or not 1 <= self.connectivity <= img.ndim:
            return super().__call__(img)
        t = plain(img) if isinstance(img, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(img))
        if t.numel() == 0 or t.dtype.is_complex:
            return super().__call__(img)
        lo, hi = torch.aminmax(t.reshape(-1)) if t.dtype != torch.bool else (t.min(), t.max())
        if bool(lo == hi):
            return img           # MONAI: a single value, returned as it is
        sr = t.ndim - 1
        conn = neighbours(min(int(self.connectivity), sr), sr)
        binary = (not self.independent_channels) or bool(hi <= 1)
        if conn is None or (binary and t.shape[0] != 1):
            return super().__call__(img)
        min_size = self._min_size(img, sr)
        if binary:
            fg = t[0] > 0 if not self.independent_channels else t[0].to(torch.bool)
            keep = _cc.remove_small_components(fg, self._keep_from(min_size), connectivity=conn)
            keep_t = convert_to_dst_type(keep[None], img)[0]
            return img * keep_t if not self.independent_channels else keep_t
        if self.per_component:
            lab = t.cpu().numpy().astype(np.int32)
            if lab.shape[0] == 1 and lab.min() >= 0:
                out = np.asarray(_cc.remove_small_components(lab[0], self._keep_from(min_size), connectivity=conn))[None]
            else:
                raise ValueError("per_component=True needs a one-channel, non-negative integer label map, "
                                 f"got shape={tuple(t.shape)}")
        else:
            out = self._remove_small_values(t, lo, hi, min_size)
        return convert_to_dst_type(out, img)[0]


class FillHoles(_mt.FillHoles):
    """``monai.transforms.FillHoles`` on the compiled hole filling, label by label inside each label's box.

    MONAI's semantics exactly: for each label (in MONAI's order), every region of other values
    (background or other labels) that the label encloses -- not connected to the image border
    through non-label voxels, with MONAI's ``connectivity`` (default: full, 26 in 3-D) -- takes
    that label; later labels see the earlier fills. One-hot inputs fill each channel. Holes of a
    label lie inside its bounding box, so each label is processed inside that box (+1 voxel).
    """

    def __call__(self, img: Any) -> Any:
        img = convert_to_tensor(img, track_meta=get_track_meta())
        x = plain(img)
        sr = x.ndim - 1
        conn = neighbours(self.connectivity or sr, sr)
        if conn is None or x.dtype.is_complex:
            return super().__call__(fresh(img))
        arr = x.detach().cpu().numpy()
        one_hot = arr.shape[0] > 1
        if one_hot:
            labels = set(self.applied_labels) if self.applied_labels is not None else \
                {i for i, s in enumerate(arr) if s.sum() > 0}
            labels.discard(0)
            out = arr.copy()
            for c in labels:
                out[c] = _cc.fill_holes(arr[c] != 0, connectivity=conn)
            return convert_to_dst_type(out, img)[0]
        lab_t = _integral_labels(x[0].detach().cpu())
        if lab_t is None or lab_t.dtype == torch.bool or (lab_t.numel() and int(lab_t.min()) < 0):
            return super().__call__(fresh(img))
        lab = lab_t.numpy().astype(np.int64, copy=True)
        labels = set(self.applied_labels) if self.applied_labels is not None else set(_unique_labels(lab_t))
        labels.discard(0)
        boxes = ndimage.find_objects(lab) if lab.size else []
        for value in labels:
            if not float(value).is_integer() or not 0 < value <= len(boxes) or boxes[int(value) - 1] is None:
                continue     # absent label: nothing is enclosed
            v = int(value)
            box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in boxes[v - 1])
            crop = lab[box]
            mask = crop == v
            if not mask.any():
                continue
            filled = _cc.fill_holes(mask, connectivity=conn)
            crop[filled & ~mask] = v
        out = lab[None].astype(arr.dtype, copy=False)
        return convert_to_dst_type(out, img)[0]


# ----------------------------------------------------------------------------- dictionary forms
class KeepLargestConnectedComponentd(_mt.KeepLargestConnectedComponentd):
    """``monai.transforms.KeepLargestConnectedComponentd`` on :class:`KeepLargestConnectedComponent`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.converter
        self.converter = KeepLargestConnectedComponent(
            applied_labels=c.applied_labels, is_onehot=c.is_onehot, independent=c.independent,
            connectivity=c.connectivity, num_components=c.num_components)


class RemoveSmallObjectsd(_mt.RemoveSmallObjectsd):
    """``monai.transforms.RemoveSmallObjectsd`` on :class:`RemoveSmallObjects`."""

    def __init__(self, *args: Any, per_component: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.converter
        self.converter = RemoveSmallObjects(c.min_size, c.connectivity, c.independent_channels, c.by_measure,
                                            c.pixdim, per_component=per_component)


class FillHolesd(_mt.FillHolesd):
    """``monai.transforms.FillHolesd`` on :class:`FillHoles`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.converter
        self.converter = FillHoles(applied_labels=c.applied_labels, connectivity=c.connectivity)
