"""Intensity suite: windowing and CT normalization vs numpy, torch and MONAI.

Peers are written the way a careful user would: numpy "best" is a preallocated 3-pass version
(multiply, add, clip in place, all float32), torch converts once and clamps/scales in place, MONAI
is ``ScaleIntensityRange`` as pipelines call it. The copy floor is a preallocated copy moving the
same bytes (input read + output written).
"""

from __future__ import annotations

import numpy as np

import medseg_fast as mf

from .data import load_benchmark_volume
from .harness import copy_bandwidth, measure, peak_extra_memory, rows_for_case, sync_for

NAME = "intensity"
DESCRIPTION = "hu_window / multi_window / intensity_stats / ct_normalize vs numpy, torch, MONAI"


def _synthetic_ct(shape, seed=0) -> np.ndarray:
    """Body-like int16 CT: air outside an ellipsoid, soft tissue and bone inside, noise."""
    rng = np.random.default_rng(seed)
    z, y, x = (np.linspace(-1, 1, s, dtype=np.float32) for s in shape)
    r2 = z[:, None, None] ** 2 * 0.5 + y[None, :, None] ** 2 + x[None, None, :] ** 2 * 0.8
    ct = np.full(shape, -1000, np.int16)
    body = r2 < 0.7
    ct[body] = 40
    ct[r2 < 0.08] = 700
    noise = rng.normal(0, 30, size=shape).astype(np.int16)
    return ct + noise


def _numpy_best_window(x, out, lo, hi):
    s = np.float32(1.0 / (hi - lo))
    np.multiply(x, s, out=out)
    np.add(out, np.float32(-lo * s), out=out)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _numpy_nnunet_ct(x):
    values = x.astype(np.float64)
    lo, hi = np.percentile(values, [0.5, 99.5])
    mean, std = values.mean(), values.std()
    out = x.astype(np.float32)
    np.clip(out, lo, hi, out=out)
    out -= mean
    out /= max(std, 1e-8)
    return out


def _cpu_cases(quick: bool):
    shape = (32, 128, 128) if quick else (256, 512, 512)
    repeats = 3 if quick else 7
    rows = []
    bandwidth = copy_bandwidth(64 * 2**20 if quick else 256 * 2**20)
    x = _synthetic_ct(shape)
    voxels = x.size
    lo, hi = mf.window_bounds(40, 400)
    out = np.empty(shape, np.float32)
    np_out = np.empty(shape, np.float32)

    import torch
    from monai.transforms import ScaleIntensityRange

    t = torch.from_numpy(x)
    monai_window = ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)

    def torch_window():
        return t.to(torch.float32).clamp_(lo, hi).sub_(lo).mul_(1.0 / (hi - lo))

    impls = {
        "medseg_fast (out=)": lambda: mf.hu_window(x, lo=lo, hi=hi, out=out),
        "medseg_fast": lambda: mf.hu_window(x, lo=lo, hi=hi),
        "numpy best 3-pass (out=)": lambda: _numpy_best_window(x, np_out, lo, hi),
        "torch": torch_window,
        "monai ScaleIntensityRange": lambda: monai_window(x),
    }
    reference = _numpy_best_window(x, np.empty(shape, np.float32), lo, hi)
    for name, fn in impls.items():  # correctness before timing
        np.testing.assert_allclose(np.asarray(fn()), reference, atol=1e-5, err_msg=name)
    timings = measure(impls, warmup=1, repeats=repeats)
    memory = {name: peak_extra_memory(fn) for name, fn in impls.items()}
    rows += rows_for_case(NAME, f"hu_window int16->float32 {shape}", timings, ours="medseg_fast (out=)",
                          voxels=voxels, bytes_moved=voxels * 6, bandwidth=bandwidth, memory=memory)

    windows = ["brain", "subdural", "bone"]
    stack_out = np.empty((3,) + shape, np.float32)
    np_stack = np.empty((3,) + shape, np.float32)

    def numpy_stack():
        for i, name in enumerate(windows):
            wlo, whi = mf.window_bounds(*mf.WINDOWS[name])
            _numpy_best_window(x, np_stack[i], wlo, whi)
        return np_stack

    impls = {
        "medseg_fast multi_window (out=)": lambda: mf.multi_window(x, windows, out=stack_out),
        "medseg_fast multi_window": lambda: mf.multi_window(x, windows),
        "numpy best 3-pass x3 (out=)": numpy_stack,
    }
    np.testing.assert_allclose(impls["medseg_fast multi_window (out=)"](), numpy_stack(), atol=1e-5)
    timings = measure(impls, warmup=1, repeats=repeats)
    rows += rows_for_case(NAME, f"multi_window 3 windows {shape}", timings, ours="medseg_fast multi_window (out=)",
                          voxels=voxels, bytes_moved=voxels * 14, bandwidth=bandwidth)

    impls = {
        "medseg_fast intensity_stats": lambda: mf.intensity_stats(x),
        "numpy percentile+mean+std": lambda: (np.percentile(x, [0.5, 99.5]), x.mean(), x.std()),
    }
    ours_p = mf.intensity_stats(x)["percentiles"]
    np.testing.assert_array_equal(ours_p, np.percentile(x, [0.5, 99.5]))
    timings = measure(impls, warmup=1, repeats=repeats)
    rows += rows_for_case(NAME, f"intensity_stats int16 {shape}", timings, ours="medseg_fast intensity_stats",
                          voxels=voxels)

    for label, volume in (("int16", x), ("float32", x.astype(np.float32))):
        impls = {
            "medseg_fast ct_normalize": lambda v=volume: mf.ct_normalize(v),
            "numpy nnU-Net CT (stats + clip + z-score)": lambda v=volume: _numpy_nnunet_ct(v),
        }
        np.testing.assert_allclose(impls["medseg_fast ct_normalize"](), _numpy_nnunet_ct(volume), rtol=1e-5, atol=1e-5)
        timings = measure(impls, warmup=1, repeats=max(3, repeats - 2))
        # int16: one histogram read + one window pass (read + float32 write) = 8 bytes per voxel;
        # float32 statistics take several radix-selection passes, so no copy fraction there.
        moved = voxels * 8 if label == "int16" else None
        rows += rows_for_case(NAME, f"ct_normalize incl. stats {label} {shape}", timings,
                              ours="medseg_fast ct_normalize", voxels=voxels, bytes_moved=moved,
                              bandwidth=bandwidth if moved else None)

    real = None if quick else load_benchmark_volume("ct_head_invesalius_hu.nii.gz")
    if real is not None:
        ct = np.ascontiguousarray(real[0]).astype(np.int16)
        impls = {
            "medseg_fast ct_normalize": lambda: mf.ct_normalize(ct),
            "numpy nnU-Net CT (stats + clip + z-score)": lambda: _numpy_nnunet_ct(ct),
        }
        np.testing.assert_allclose(impls["medseg_fast ct_normalize"](), _numpy_nnunet_ct(ct), rtol=1e-5, atol=1e-5)
        timings = measure(impls, warmup=1, repeats=5)
        rows += rows_for_case(NAME, f"ct_normalize real head CT {ct.shape}", timings,
                              ours="medseg_fast ct_normalize", voxels=ct.size)
    return rows


def _cuda_cases(quick: bool):
    import torch

    shape = (64, 256, 256) if quick else (256, 512, 512)
    x = torch.from_numpy(_synthetic_ct(shape)).cuda()
    out = torch.empty(shape, dtype=torch.float32, device="cuda")
    lo, hi = mf.window_bounds(40, 400)
    sync = sync_for("cuda")
    src = torch.empty(x.numel() * 3, dtype=torch.int16, device="cuda")
    dst = torch.empty_like(src)
    copy = measure({"copy": lambda: dst.copy_(src)}, warmup=2, repeats=10, sync=sync)["copy"]
    bandwidth = 2 * src.numel() * 2 / copy.median

    def torch_window():
        return torch.clamp(x.to(torch.float32), lo, hi).sub_(lo).mul_(1.0 / (hi - lo))

    impls = {
        "medseg_fast (out=)": lambda: mf.hu_window(x, lo=lo, hi=hi, out=out),
        "medseg_fast": lambda: mf.hu_window(x, lo=lo, hi=hi),
        "torch": torch_window,
    }
    torch.testing.assert_close(impls["medseg_fast"](), torch_window(), atol=1e-5, rtol=0)
    timings = measure(impls, warmup=2, repeats=10, sync=sync)
    rows = rows_for_case(NAME, f"cuda hu_window int16->float32 {shape}", timings, ours="medseg_fast (out=)",
                         voxels=x.numel(), bytes_moved=x.numel() * 6, bandwidth=bandwidth)

    def torch_ct():
        xf = x.to(torch.float32)
        sample = xf.flatten()[:: max(1, xf.numel() // 16_000_000)]  # torch.quantile input limit
        lo_, hi_ = torch.quantile(sample, torch.tensor([0.005, 0.995], device="cuda"))
        return (xf.clamp_(lo_, hi_) - xf.mean()) / xf.std(unbiased=False)

    impls = {"medseg_fast ct_normalize": lambda: mf.ct_normalize(x), "torch (sampled quantile)": torch_ct}
    timings = measure(impls, warmup=2, repeats=10, sync=sync)
    rows += rows_for_case(NAME, f"cuda ct_normalize incl. stats {shape}", timings, ours="medseg_fast ct_normalize",
                          voxels=x.numel(), notes={"torch (sampled quantile)": "approximate: quantile of a subsample"})
    return rows


def run(device: str = "cpu", quick: bool = False):
    return _cuda_cases(quick) if device == "cuda" else _cpu_cases(quick)
