"""MONAI intensity transforms (array and dictionary forms) with one cache-resident pass.

MONAI applies ``(x - a) / w * s + b`` and the clip as separate whole-tensor operations, each
allocating a new (Meta)Tensor and going through MetaTensor's dispatch. Here the same operations,
in the same order and dtype, run in place on cache-sized chunks (``medseg_fast._chunked.chunked``), so the
result is bit-identical to MONAI's while the volume is read and written once. Statistics
(percentiles above a million voxels) come from :func:`medseg_fast.intensity_stats`, whose
percentiles equal ``numpy.percentile`` (what MONAI calls there) bit for bit.

Fast path: plain scalar parameters (0-d tensors for the percentile bounds). Tensor-valued
``subtrahend``/``divisor`` and the ``a_min == a_max`` warning case go to MONAI.
"""

from __future__ import annotations

from typing import Any

import monai.transforms as _mt
import numpy as np
import torch
from monai.data.meta_obj import get_track_meta
from monai.transforms.utils_pytorch_numpy_unification import percentile as _monai_percentile
from monai.utils import convert_to_dst_type, convert_to_tensor, get_equivalent_dtype

from .._chunked import chunked, chunked_map
from ._common import fresh, is_real_scalar, plain

__all__ = [
    "ScaleIntensityRange", "ScaleIntensityRanged", "ScaleIntensityRangePercentiles",
    "ScaleIntensityRangePercentilesd", "NormalizeIntensity", "NormalizeIntensityd", "ScaleIntensity",
    "ScaleIntensityd",
]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INTS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _torch_dtype(dtype: Any, default: torch.dtype) -> torch.dtype:
    return default if dtype is None else get_equivalent_dtype(dtype, torch.Tensor)


def _scalar_like(v: Any, x: torch.Tensor) -> bool:
    """A python number, or a 0-d tensor of x's dtype and device (MONAI's percentile results)."""
    if is_real_scalar(v):
        return True
    return isinstance(v, torch.Tensor) and v.ndim == 0 and v.dtype == x.dtype and v.device == x.device


def _wrap(out: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """MONAI's ``convert_to_dst_type(out, dst=img)`` with out's dtype: MetaTensor in, MetaTensor out."""
    return convert_to_dst_type(out, dst=img, dtype=out.dtype)[0]


class ScaleIntensityRange(_mt.ScaleIntensityRange):
    """``monai.transforms.ScaleIntensityRange`` in one chunked pass (bit-identical results).

    Same arguments and outputs as MONAI's: ``(x - a_min) / (a_max - a_min)``, then
    ``* (b_max - b_min) + b_min`` when both are given, then the clip, in the input's dtype, cast
    to ``dtype``. Floating-point inputs run in place in their dtype; integer inputs run in place in
    float32 where that is exact (a float ``a_min``, or an integer one whose subtraction cannot wrap),
    else MONAI's expression runs chunk by chunk with its integer intermediate (wrap included);
    ``a_min == a_max`` runs MONAI's code.

    Examples
    --------
    >>> import torch
    >>> from medseg_fast.monai import ScaleIntensityRange
    >>> t = ScaleIntensityRange(a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True)
    >>> t(torch.tensor([[-2000.0, 0.0, 500.0]])).tolist()
    [[0.0, 0.5, 0.75]]
    """

    def __call__(self, img: Any) -> Any:
        img = convert_to_tensor(img, track_meta=get_track_meta())
        x = plain(img)
        a_min, a_max, b_min, b_max = self.a_min, self.a_max, self.b_min, self.b_max
        scalars = all(_scalar_like(v, x) or (v is None and k >= 2) for k, v in enumerate((a_min, a_max, b_min, b_max)))
        if x.dtype not in _FLOATS + _INTS or not scalars or bool(a_max - a_min == 0.0) or \
                (self.clip and b_min is None and b_max is None):
            return super().__call__(img)
        out_dtype = _torch_dtype(self.dtype, x.dtype)
        width = a_max - a_min
        both = b_min is not None and b_max is not None
        span = (b_max - b_min) if both else None
        compute = x.dtype
        if x.dtype in _INTS and is_real_scalar(a_min) and is_real_scalar(width) and x.numel():
            # ``x - a_min`` promotes to float32 for a float a_min; for an integer one it is exact
            # in float32 when it cannot wrap and stays below 2^24 in magnitude, and the true
            # division then casts it to float32: either way the float32 in-place pass is exact.
            probe = x.reshape(-1)[:1]
            if torch.result_type(probe, a_min) == torch.float32 and \
                    torch.result_type(probe - a_min, width) == torch.float32:
                compute = torch.float32
            elif not torch.result_type(probe, a_min).is_floating_point:     # int / number: float32
                info = torch.iinfo(x.dtype)
                lo, hi = (int(v) for v in torch.aminmax(x))
                a = int(a_min)
                if info.min <= a <= info.max and info.min <= lo - a and hi - a <= info.max and \
                        max(abs(lo - a), abs(hi - a)) <= 1 << 24:
                    compute = torch.float32
        if compute in _INTS:
            # MONAI's expression as written: ``x - a_min`` stays in the integer dtype for an integer
            # a_min (wrapping as torch wraps), the true division gives float32
            def expression(t: torch.Tensor) -> torch.Tensor:
                t = (t - a_min) / width
                if both:
                    t = t * span + b_min
                return torch.clamp(t, b_min, b_max) if self.clip else t

            return _wrap(chunked_map(x, out_dtype, expression), img)

        def steps(t: torch.Tensor) -> None:
            t.sub_(a_min).div_(width)
            if both:
                t.mul_(span).add_(b_min)
            if self.clip:
                t.clamp_(b_min, b_max)

        return _wrap(chunked(x, compute, out_dtype, steps), img)


def _quantiles_like_torch(x: Any, qs: tuple) -> tuple | None:
    """``torch.quantile(x, q / 100)`` for each q as MONAI's ``percentile`` calls it (below 10^6
    elements), from exact order statistics (one ``numpy.partition``) instead of a full sort.

    The ranks, weights and ``lerp`` are torch's own steps (``q * (n - 1)`` in x's dtype, the
    truncated and ceiled ranks, ``lerp_`` of the two neighbours) on the same one-element tensors,
    so the result is bit-identical. None (MONAI's code runs) for other dtypes or devices, NaNs
    (torch returns NaN) and zero neighbours (which of -0.0 / +0.0 a sort puts there is not known).
    """
    if not isinstance(x, torch.Tensor) or x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) \
            or not 0 < x.numel() <= 1_000_000 or x.requires_grad:
        return None
    if bool(torch.isnan(x).any()):
        return None
    n = x.numel()
    steps = []
    for q in qs:
        ranks = torch.as_tensor(np.asarray(q, dtype=np.float64) / 100.0, dtype=x.dtype).reshape(1) * (n - 1)
        below = ranks.to(torch.long)
        steps.append((below, ranks - below, ranks.ceil().to(torch.long)))
    kth = sorted({int(k) for b, _, a in steps for k in (b, a)})
    part = np.partition(x.detach().reshape(-1).numpy(), kth)
    out = []
    for below, weights, above in steps:
        lo = torch.from_numpy(part[below.numpy()])
        hi = torch.from_numpy(part[above.numpy()])
        if bool(lo == 0) or bool(hi == 0):
            return None
        out.append(lo.lerp_(hi, weights).reshape(()))
    return tuple(out)


class ScaleIntensityRangePercentiles(_mt.ScaleIntensityRangePercentiles):
    """``monai.transforms.ScaleIntensityRangePercentiles`` with exact selection-based percentiles.

    MONAI takes ``torch.quantile`` (a full sort) up to a million elements and
    ``numpy.percentile`` above. Above a million elements the two percentiles come here from the
    radix selection of :func:`medseg_fast.intensity_stats` (bit-identical to ``numpy.percentile``;
    the moments pass is skipped: only a NaN check); below,
    float32/float64 CPU tensors get torch.quantile's result from one ``numpy.partition``
    (bit-identical, see ``_quantiles_like_torch``). The scaling is :class:`ScaleIntensityRange`'s
    chunked pass. Results equal MONAI's.
    """

    def _normalize(self, img: Any) -> Any:
        x = plain(img) if isinstance(img, torch.Tensor) else img
        if isinstance(x, torch.Tensor) and x.numel() > 1_000_000 and x.dtype in _FLOATS + (
                torch.int16, torch.uint8, torch.int8, torch.int32, torch.int64):
            from .._intensity_stats import percentiles_of

            q = percentiles_of(x, (self.lower, self.upper))
            a_min = torch.as_tensor(np.float64(q[0]), device=x.device).to(x.dtype)
            a_max = torch.as_tensor(np.float64(q[1]), device=x.device).to(x.dtype)
        elif (bounds := _quantiles_like_torch(x, (self.lower, self.upper))) is not None:
            a_min, a_max = bounds
        else:
            a_min = _monai_percentile(img, self.lower)
            a_max = _monai_percentile(img, self.upper)
        b_min, b_max = self.b_min, self.b_max
        if self.relative:
            if (self.b_min is None) or (self.b_max is None):
                raise ValueError("If it is relative, b_min and b_max should not be None.")
            b_min = ((self.b_max - self.b_min) * (self.lower / 100.0)) + self.b_min
            b_max = ((self.b_max - self.b_min) * (self.upper / 100.0)) + self.b_min
        scaler = ScaleIntensityRange(a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=self.clip,
                                     dtype=self.dtype)
        return convert_to_tensor(scaler(img), track_meta=False)


class NormalizeIntensity(_mt.NormalizeIntensity):
    """``monai.transforms.NormalizeIntensity`` in one chunked pass after MONAI's own statistics.

    The mean and standard deviation are ``torch.mean`` / ``torch.std(unbiased=False)`` of the
    float32 image (``nonzero=True``: of its nonzero voxels, gathered as MONAI gathers them) as in
    MONAI, and ``(x - mean) / std`` runs chunked (``nonzero=True``: applied to nonzero voxels
    only): bit-identical. ``channel_wise=True`` normalises each channel in float32 and stores it
    in the (floating) input dtype before the cast to ``dtype``, as MONAI does. Array-valued
    ``subtrahend``/``divisor`` (and per-channel sequences) run MONAI's code.
    """

    def _one(self, x: torch.Tensor, sub: Any, div: Any, out_dtype: torch.dtype) -> torch.Tensor:
        """MONAI's ``_normalize`` of one (channel or whole) image, result in ``out_dtype``."""
        x32 = x.to(torch.float32)
        masked = x32
        if self.nonzero:
            nonzero = x32 != 0
            if not bool(nonzero.any()):
                return x32.to(out_dtype, copy=True)       # MONAI: returned unchanged
            masked = x32[nonzero]
        if sub is None:
            sub = torch.mean(masked).item()
        if div is None:
            div = torch.std(masked, unbiased=False).item()
        if np.isscalar(div) and div == 0.0:
            div = 1.0

        def steps(t: torch.Tensor) -> None:
            t.sub_(sub).div_(div)

        def steps_nonzero(t: torch.Tensor) -> None:
            t.copy_(torch.where(t == 0, t, (t - sub) / div))     # zeros (and -0.0) kept as they are

        return chunked(x32, torch.float32, out_dtype, steps_nonzero if self.nonzero else steps)

    def __call__(self, img: Any) -> Any:
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        sub, div = self.subtrahend, self.divisor
        x = plain(img_t)
        if not (sub is None or is_real_scalar(sub)) or not (div is None or is_real_scalar(div)) or \
                (self.channel_wise and (sub is not None or div is not None or x.ndim == 0)) or \
                not (x.is_floating_point() or x.dtype in (
                    torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)):
            return super().__call__(fresh(img))     # MONAI's code writes into a float32 input
        dtype = self.dtype or img.dtype
        out_dtype = get_equivalent_dtype(dtype, torch.Tensor)
        if not self.channel_wise:
            return _wrap(self._one(x, sub, div, out_dtype), img_t)
        store = x.dtype if x.is_floating_point() else torch.float32
        out = torch.empty(x.shape, dtype=out_dtype, device=x.device)
        for i in range(x.shape[0]):
            out[i].copy_(self._one(x[i], None, None, store))
        return _wrap(out, img_t)


class ScaleIntensity(_mt.ScaleIntensity):
    """``monai.transforms.ScaleIntensity`` (min-max rescale) in one chunked pass.

    ``min`` and ``max`` come from one ``torch.aminmax`` pass; ``(x - min) / (max - min) *
    (maxv - minv) + minv`` runs chunked in place in the output dtype: bit-identical to MONAI.
    ``channel_wise=True``, ``factor`` and constant images run MONAI's code.
    """

    def __call__(self, img: Any) -> Any:
        img = convert_to_tensor(img, track_meta=get_track_meta())
        x = plain(img)
        minv, maxv = self.minv, self.maxv
        if self.channel_wise or (minv is None and maxv is None) or x.numel() == 0 or \
                not all(v is None or is_real_scalar(v) for v in (minv, maxv)) or x.dtype == torch.bool:
            return super().__call__(img)
        compute = _torch_dtype(self.dtype, x.dtype)
        if compute not in _FLOATS:
            return super().__call__(img)
        lo, hi = torch.aminmax(x)
        lo, hi = lo.to(compute), hi.to(compute)
        if bool(lo == hi) or bool(torch.isnan(lo)):
            return super().__call__(img)
        width = hi - lo
        both = minv is not None and maxv is not None

        def steps(t: torch.Tensor) -> None:
            t.sub_(lo).div_(width)
            if both:
                t.mul_(maxv - minv).add_(minv)

        out_dtype = _torch_dtype(self.dtype, x.dtype)
        return _wrap(chunked(x, compute, out_dtype, steps), img)


# ----------------------------------------------------------------------------- dictionary forms
class ScaleIntensityRanged(_mt.ScaleIntensityRanged):
    """``monai.transforms.ScaleIntensityRanged`` on :class:`ScaleIntensityRange`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = self.scaler
        self.scaler = ScaleIntensityRange(s.a_min, s.a_max, s.b_min, s.b_max, s.clip, s.dtype)


class ScaleIntensityRangePercentilesd(_mt.ScaleIntensityRangePercentilesd):
    """``monai.transforms.ScaleIntensityRangePercentilesd`` on :class:`ScaleIntensityRangePercentiles`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = self.scaler
        self.scaler = ScaleIntensityRangePercentiles(s.lower, s.upper, s.b_min, s.b_max, s.clip, s.relative,
                                                     s.channel_wise, s.dtype)


class NormalizeIntensityd(_mt.NormalizeIntensityd):
    """``monai.transforms.NormalizeIntensityd`` on :class:`NormalizeIntensity`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        n = self.normalizer
        self.normalizer = NormalizeIntensity(n.subtrahend, n.divisor, n.nonzero, n.channel_wise, n.dtype)


class ScaleIntensityd(_mt.ScaleIntensityd):
    """``monai.transforms.ScaleIntensityd`` on :class:`ScaleIntensity`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = self.scaler
        self.scaler = ScaleIntensity(s.minv, s.maxv, s.factor, s.channel_wise, s.dtype)
