"""Distance suite: exact EDT and surface metrics vs edt, scipy, MONAI, MedPy, DeepMind, SimpleITK.

Cases (the issue's target sizes; ``--quick`` uses smaller ones):

* EDT of a 256x512x512 body mask, spacing (2.5, 0.8, 0.8): ours vs the ``edt`` package (same
  thread count) and ``scipy.ndimage.distance_transform_edt`` (about 30 s here: timed once).
* HD95 of organ-sized masks (160x256x256 head mask vs a shifted, dilated copy): ours (each
  convention) vs MONAI ``compute_hausdorff_distance``, MedPy ``hd95``, DeepMind
  ``compute_robust_hausdorff``; Hausdorff (max) vs SimpleITK ``HausdorffDistanceImageFilter``
  (which measures between voxel sets rather than surfaces: a cost comparison, values noted).
* HD95 of a small lesion in a 256x512x512 volume (the lung tumour label, dilated copy as pred).
* ``evaluate`` (Dice + HD95 + ASSD of all 83 labels of two atlas label maps) vs MONAI's metric
  classes (DiceMetric, HausdorffDistanceMetric(percentile=95), SurfaceDistanceMetric(symmetric)).

Every peer's result is checked against ours (same convention) before timing. Slow peers are
timed with fewer repeats (noted per row).
"""

from __future__ import annotations

import warnings

import numpy as np

import medseg_fast as mf
from medseg_fast import _C
from medseg_fast import metrics as M

from .data import load_benchmark_volume
from .harness import Timing, measure, peak_extra_memory, rows_for_case

NAME = "distance"
DESCRIPTION = "distance_transform / hausdorff / evaluate vs edt, scipy, MONAI, MedPy, DeepMind, SimpleITK"


def _resize_nearest(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    idx = [np.minimum((np.arange(n) * s / n).astype(int), s - 1) for n, s in zip(shape, x.shape)]
    return x[np.ix_(*idx)]


def _body_mask(shape) -> np.ndarray:
    vol = load_benchmark_volume("ct_chest_lung2_hu.nii.gz")
    if vol is not None:
        return np.ascontiguousarray(_resize_nearest(vol[0] > -500, shape))
    z, y, x = (np.linspace(-1, 1, s, dtype=np.float32) for s in shape)
    return (z[:, None, None] ** 2 * 0.3 + y[None, :, None] ** 2 + x[None, None, :] ** 2 * 0.8) < 0.7


def _organ_pair(shape):
    vol = load_benchmark_volume("ct_head_invesalius_mask_head_m142_2986hu.nii.gz")
    if vol is not None:
        gt = np.ascontiguousarray(_resize_nearest(vol[0] > 0, shape))
    else:
        z, y, x = (np.linspace(-1, 1, s, dtype=np.float32) for s in shape)
        gt = (z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2) < 0.5
    import scipy.ndimage as ndi

    pred = ndi.binary_dilation(np.roll(gt, (2, -3, 4), axis=(0, 1, 2)), iterations=2)
    return pred, gt


def _lesion_pair(shape):
    vol = load_benchmark_volume("ct_chest_lung2_tumor_label.nii.gz")
    import scipy.ndimage as ndi

    if vol is not None:
        gt = np.ascontiguousarray(_resize_nearest(vol[0] > 0, shape))
    else:
        gt = np.zeros(shape, bool)
        c = [s // 2 for s in shape]
        gt[c[0] - 5:c[0] + 5, c[1] - 10:c[1] + 12, c[2] - 9:c[2] + 11] = True
    pred = ndi.binary_dilation(np.roll(gt, 2, axis=2), iterations=1)
    return pred, gt


def _combine(*timings: dict[str, Timing]) -> dict[str, Timing]:
    out: dict[str, Timing] = {}
    for t in timings:
        out.update(t)
    return out


def _monai_tensor(mask):
    import torch

    return torch.from_numpy(mask[None, None].astype(np.float32))


def _monai_hd(pred, gt, spacing, percentile):
    from monai.metrics import compute_hausdorff_distance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(compute_hausdorff_distance(_monai_tensor(pred), _monai_tensor(gt), percentile=percentile,
                                                spacing=spacing).item())


def _deepmind_hd95(pred, gt, spacing):
    import surface_distance as sd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(sd.compute_robust_hausdorff(sd.compute_surface_distances(gt, pred, spacing), 95))


def _sitk_hd(pred, gt, spacing):
    import SimpleITK as sitk

    images = []
    for m in (pred, gt):
        im = sitk.GetImageFromArray(m.astype(np.uint8))
        im.SetSpacing(tuple(float(s) for s in reversed(spacing)))
        images.append(im)
    f = sitk.HausdorffDistanceImageFilter()
    f.Execute(images[0], images[1])
    return f.GetHausdorffDistance()


def _check(name: str, ours: float, theirs: float, rtol: float) -> str:
    err = abs(ours - theirs) / max(abs(theirs), 1e-12)
    if not err <= rtol:
        raise AssertionError(f"{name}: ours={ours!r} vs peer={theirs!r} (relative error {err:.2e})")
    return f"checked: rel. diff {err:.1e}"


def _edt_case(quick: bool) -> list:
    import edt as edt_pkg
    import scipy.ndimage as ndi

    shape = (64, 128, 128) if quick else (256, 512, 512)
    spacing = (2.5, 0.8, 0.8)
    mask = _body_mask(shape)
    threads = mf.get_num_threads()
    case = f"EDT {'x'.join(map(str, shape))} sp={spacing} {threads} threads"
    ours = mf.distance_transform(mask, spacing)
    theirs = edt_pkg.edt(mask, anisotropy=spacing, parallel=threads)
    notes = {"medseg_fast": "", "edt": f"max abs diff {np.abs(ours - theirs).max():.1e} mm"}
    # scipy: the full volume takes ~30 s here, so it runs once (and is checked on that run).
    ref = {}

    def scipy_edt():
        ref["d"] = ndi.distance_transform_edt(mask, sampling=spacing)

    def portable():   # the scalar envelope every CPU runs (no AVX2)
        before = _C._edt_simd_mode(-1)
        _C._edt_simd_mode(0)
        try:
            return mf.distance_transform(mask, spacing)
        finally:
            _C._edt_simd_mode(before)

    impls = {
        "medseg_fast": lambda: mf.distance_transform(mask, spacing),
        "medseg_fast portable": portable,
        "medseg_fast float64": lambda: mf.distance_transform(mask, spacing, dtype="float64"),
        "edt": lambda: edt_pkg.edt(mask, anisotropy=spacing, parallel=threads),
    }
    fast = measure(impls, warmup=1, repeats=3 if quick else 5)
    slow = measure({"scipy": scipy_edt}, warmup=0, repeats=1)
    d64 = mf.distance_transform(mask, spacing, dtype="float64")
    notes["scipy"] = f"1 run; float64 max abs diff {np.abs(d64 - ref['d']).max():.1e} mm"
    notes["medseg_fast float64"] = "float64 output"
    notes["medseg_fast portable"] = ("scalar envelope (MEDSEG_EDT_SIMD=0); default path here: "
                                     f"{mf.config()['cpu_edt_simd']}")
    del ref["d"]
    memory = {
        "medseg_fast": peak_extra_memory(lambda: mf.distance_transform(mask, spacing)),
        "edt": peak_extra_memory(lambda: edt_pkg.edt(mask, anisotropy=spacing, parallel=threads)),
    }
    return rows_for_case(NAME, case, _combine(fast, slow), ours="medseg_fast", voxels=mask.size, memory=memory,
                         notes=notes)


def _hd95_case(label: str, pred, gt, spacing, quick: bool, include_slow: bool) -> list:
    from medpy.metric import binary as medpy_binary

    case = f"HD95 {label} {'x'.join(map(str, gt.shape))}"
    notes = {}
    ours_m = M.hausdorff(pred, gt, spacing, percentile=95)
    notes["monai compute_hausdorff_distance"] = _check("monai", ours_m, _monai_hd(pred, gt, spacing, 95), 1e-6)
    ours_p = M.hausdorff(pred, gt, spacing, percentile=95, convention="medpy")
    ours_d = M.hausdorff(pred, gt, spacing, percentile=95, convention="deepmind")
    impls = {
        "medseg_fast": lambda: M.hausdorff(pred, gt, spacing, percentile=95),
        "medseg_fast medpy": lambda: M.hausdorff(pred, gt, spacing, percentile=95, convention="medpy"),
        "medseg_fast deepmind": lambda: M.hausdorff(pred, gt, spacing, percentile=95, convention="deepmind"),
        "monai compute_hausdorff_distance": lambda: _monai_hd(pred, gt, spacing, 95),
    }
    fast = measure(impls, warmup=1, repeats=3 if quick else 5)
    slow_impls = {}
    if include_slow:
        notes["medpy hd95"] = _check("medpy", ours_p, medpy_binary.hd95(pred, gt, spacing), 1e-12)
        notes["deepmind robust_hausdorff"] = _check("deepmind", ours_d, _deepmind_hd95(pred, gt, spacing), 1e-12)
        slow_impls["medpy hd95"] = lambda: medpy_binary.hd95(pred, gt, spacing)
        slow_impls["deepmind robust_hausdorff"] = lambda: _deepmind_hd95(pred, gt, spacing)
    ours_max = M.hausdorff(pred, gt, spacing, convention="medpy")
    # SimpleITK measures between the voxel sets (not their surfaces): a different number, so
    # this row compares cost only; both values are reported.
    notes["sitk HausdorffDistance (max)"] = (f"set (not surface) Hausdorff: {_sitk_hd(pred, gt, spacing):.3f} mm "
                                             f"vs our surface HD {ours_max:.3f} mm")
    notes["medseg_fast hd (max)"] = "max Hausdorff, for the SimpleITK row"
    slow_impls["medseg_fast hd (max)"] = lambda: M.hausdorff(pred, gt, spacing, convention="medpy")
    slow_impls["sitk HausdorffDistance (max)"] = lambda: _sitk_hd(pred, gt, spacing)
    slow = measure(slow_impls, warmup=0, repeats=1)
    for name in slow_impls:
        notes[name] = (notes.get(name, "") + "; 1 run").lstrip("; ")
    return rows_for_case(NAME, case, _combine(fast, slow), ours="medseg_fast", voxels=gt.size, notes=notes)


def _atlas_case(quick: bool) -> list:
    a = load_benchmark_volume("dk_native_donor12876_1mm.nii.gz")
    b = load_benchmark_volume("dk_native_donor14380_1mm.nii.gz")
    if a is None or b is None:
        return []
    gt, spacing = a[0].astype(np.int16), a[1]
    pred = b[0].astype(np.int16)
    if quick:
        gt, pred = gt[::2, ::2, ::2], pred[::2, ::2, ::2]
        spacing = tuple(2 * s for s in spacing)
    classes = [int(c) for c in np.unique(gt) if c != 0]
    case = f"evaluate {len(classes)} labels dice+hd95+assd {'x'.join(map(str, gt.shape))}"

    import torch
    from monai.metrics import DiceMetric, HausdorffDistanceMetric, SurfaceDistanceMetric

    def monai_eval():
        k = max(classes) + 1
        p = torch.nn.functional.one_hot(torch.from_numpy(pred.astype(np.int64)), k).permute(3, 0, 1, 2)[None]
        g = torch.nn.functional.one_hot(torch.from_numpy(gt.astype(np.int64)), k).permute(3, 0, 1, 2)[None]
        sel = torch.tensor(classes)
        p, g = p[:, sel].float(), g[:, sel].float()
        out = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, metric in (("dice", DiceMetric(include_background=True)),
                                 ("hd95", HausdorffDistanceMetric(include_background=True, percentile=95)),
                                 ("assd", SurfaceDistanceMetric(include_background=True, symmetric=True))):
                metric(p, g, spacing=spacing) if name != "dice" else metric(p, g)
                out[name] = metric.aggregate(reduction="none").numpy()[0]
        return out

    theirs = monai_eval()
    rows = M.evaluate(pred, gt, classes, spacing, metrics=("dice", "hd95", "assd"))
    err = max(abs(r[m] - theirs[m][i]) / max(abs(theirs[m][i]), 1e-9)
              for i, r in enumerate(rows) for m in ("dice", "hd95", "assd"))
    if err > 1e-5:
        raise AssertionError(f"evaluate vs MONAI: relative difference {err:.2e}")
    fast = measure({"medseg_fast": lambda: M.evaluate(pred, gt, classes, spacing, metrics=("dice", "hd95", "assd"))},
                   warmup=1, repeats=3)
    slow = measure({"monai metric classes": monai_eval}, warmup=0, repeats=1)
    notes = {"monai metric classes": f"1 run; checked, max rel. diff {err:.1e}"}
    return rows_for_case(NAME, case, _combine(fast, slow), ours="medseg_fast", voxels=gt.size, notes=notes)


def run(device: str = "cpu", quick: bool = False) -> list:
    if device != "cpu":
        return _gpu_cases(quick)
    rows = []
    rows += _edt_case(quick)
    organ_shape = (40, 64, 64) if quick else (160, 256, 256)
    pred, gt = _organ_pair(organ_shape)
    rows += _hd95_case("organ", pred, gt, (1.5, 0.96, 0.96), quick, include_slow=True)
    lesion_shape = (64, 128, 128) if quick else (256, 512, 512)
    pred, gt = _lesion_pair(lesion_shape)
    rows += _hd95_case("small lesion", pred, gt, (2.5, 0.8, 0.8), quick, include_slow=True)
    rows += _atlas_case(quick)
    return rows


def _gpu_cases(quick: bool) -> list:
    import torch

    from .harness import sync_for

    shape = (64, 128, 128) if quick else (256, 512, 512)
    spacing = (2.5, 0.8, 0.8)
    mask = torch.from_numpy(_body_mask(shape)).cuda()
    impls = {"medseg_fast": lambda: mf.distance_transform(mask, spacing)}
    notes = {}
    try:
        import cupy
        from cupyx.scipy.ndimage import distance_transform_edt as cupy_edt

        cmask = cupy.asarray(mask.cpu().numpy())
        ours = mf.distance_transform(mask, spacing).cpu().numpy()
        theirs = cupy.asnumpy(cupy_edt(cmask, sampling=spacing))
        notes["cupyx distance_transform_edt"] = f"max abs diff {np.abs(ours - theirs).max():.1e}"
        impls["cupyx distance_transform_edt"] = lambda: cupy_edt(cmask, sampling=spacing)
    except ImportError:
        pass
    timings = measure(impls, warmup=2, repeats=10, sync=sync_for("cuda"))
    return rows_for_case(NAME, f"EDT {'x'.join(map(str, shape))} cuda", timings, ours="medseg_fast",
                         voxels=int(mask.numel()), notes=notes)
