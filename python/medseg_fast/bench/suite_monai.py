"""MONAI suite: each ``medseg_fast.monai`` class vs MONAI's class of the same name, on MetaTensor input.

The drop-in promise is "change the import, keep the pipeline", so both sides run the same code with
the same arguments; only the class differs. Cases (``--quick``: the volumes subsampled by 2 per axis,
two atlases in the whole step, a 48**3 loss batch):

* intensity (the real chest CT ``ct_chest_lung2_hu``, float32 MetaTensor (1, 512, 512, 61) as
  ``LoadImaged`` gives it): ``ScaleIntensityRanged`` (CT window -1000..1000 -> 0..1, clipped),
  ``ScaleIntensityRangePercentilesd`` (0.5 / 99.5), ``NormalizeIntensityd``, ``ScaleIntensityd``;
* ``Spacingd`` order 3 (the CT to 1.5 x 1.5 x 2 mm): ``medseg_fast.monai.Spacingd`` *is* MONAI's
  implementation today (no compiled path), so this row measures the same code twice;
* post-processing on a real label map (DK atlas donor12876, 82 labels, float32 as after
  ``AsDiscreted(argmax=True)``): ``KeepLargestConnectedComponentd``, ``RemoveSmallObjectsd``
  (min_size 64; plus a binary bone mask of the CT), ``FillHolesd``;
* metric classes (that atlas vs itself shifted one voxel, float32 one-hot (1, 83, ...) as
  ``AsDiscrete(to_onehot=83)`` gives it, background excluded): ``DiceMetric``, ``MeanIoU``,
  ``HausdorffDistanceMetric(percentile=95)``, ``SurfaceDistanceMetric(symmetric=True)``,
  ``SurfaceDiceMetric`` (1 mm tolerance), each call + ``aggregate`` + ``reset``;
* losses ``DiceLoss`` / ``DiceCELoss`` / ``DiceFocalLoss`` (``to_onehot_y=True, softmax=True``)
  forward + backward on (2, 4, 96, 96, 96) float32 logits and integer targets;
* the whole step over the five DK donor atlases (each label map vs itself shifted one voxel):
  ``KeepLargestConnectedComponentd`` + ``FillHolesd`` on the shifted map, ``AsDiscrete(to_onehot)``
  (MONAI's, the same for both), then Dice, HD95, ASSD and surface Dice accumulated over the five
  cases and aggregated. A second row of ours uses ``AsDiscrete(to_onehot=83, dtype=torch.bool)``
  (a MONAI argument, same results), which spares the 2.4 GB float32 one-hot tensors.

Correctness is checked on every row before timing and written into the note column (labels:
number of differing voxels; floats: max absolute and relative difference; MetaTensor affine kept).
A mismatch or a crash of ours is recorded there, not raised. MONAI peers slower than 2 s per call
are timed once (the checked call, "1 run"), with their peak memory sampled during that run.
"""

from __future__ import annotations

import gc
import time
import traceback
import warnings
from typing import Any, Callable

import numpy as np

from .data import benchmark_dir
from .harness import Row, Timing, measure, peak_extra_memory, rows_for_case

NAME = "monai"
DESCRIPTION = "medseg_fast.monai classes vs MONAI's (intensity, post-processing, Spacingd, metrics, losses, eval step)"

OURS = "medseg_fast.monai"
PEER = "monai"
SLOW_S = 2.0          # a MONAI call slower than this is timed once (ours: fewer repeats)
BUDGET_S = 30.0       # about this long for the timed repeats of a slow implementation
CT = "ct_chest_lung2_hu.nii.gz"
ATLAS = "dk_native_donor12876_1mm.nii.gz"
DONORS = ("10021", "12876", "14380", "15496", "15697")


# ----------------------------------------------------------------------------- data
def _meta_volume(name: str, quick: bool, dtype=np.float32):
    """A benchmark volume as MONAI's readers give it: (1, x, y, z) MetaTensor with the RAS affine; None if absent."""
    folder = benchmark_dir()
    if folder is None or not (folder / name).exists():
        return None
    import SimpleITK as sitk
    import torch
    from monai.data import MetaTensor

    image = sitk.ReadImage(str(folder / name))
    arr = sitk.GetArrayFromImage(image).transpose(2, 1, 0)    # z, y, x -> x, y, z
    spacing = np.asarray(image.GetSpacing(), np.float64)
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(image.GetDirection(), np.float64).reshape(3, 3) * spacing
    affine[:3, 3] = image.GetOrigin()
    if quick:
        arr = arr[::2, ::2, ::2] if "dk_" in name else arr[::2, ::2, :]
        affine[:3, :3] = affine[:3, :3] @ np.diag([2.0, 2.0, 2.0 if "dk_" in name else 1.0])
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine            # LPS -> RAS
    data = torch.from_numpy(np.ascontiguousarray(arr[None]).astype(dtype))
    return MetaTensor(data, affine=torch.as_tensor(affine, dtype=torch.float64), meta={"filename_or_obj": name})


def _shifted(label):
    """The label map moved one voxel along the first spatial axis (zero-filled)."""
    out = label.clone()
    out[:, 1:] = label[:, :-1]
    out[:, :1] = 0
    return out


def _shape(t) -> str:
    return "x".join(str(s) for s in t.shape)


# ----------------------------------------------------------------------------- checks
def _array(x) -> np.ndarray:
    import torch

    if isinstance(x, dict):
        x = x[next(iter(x))]
    if isinstance(x, torch.Tensor):
        x = x.detach()
        x = x.as_tensor() if hasattr(x, "as_tensor") else x
        return x.cpu().numpy()
    return np.asarray(x)


def _meta_note(ours, theirs) -> str:
    """'' when the MetaTensor affine and type agree, else what differs."""
    from monai.data import MetaTensor

    if isinstance(ours, dict):
        ours, theirs = ours[next(iter(ours))], theirs[next(iter(theirs))]
    if isinstance(theirs, MetaTensor):
        if not isinstance(ours, MetaTensor):
            return f"; ours returns {type(ours).__name__}, not MetaTensor"
        if not np.allclose(np.asarray(ours.affine), np.asarray(theirs.affine)):
            return "; affine differs"
    return ""


def _compare(ours, theirs, labels: bool = False, scaled: bool = False) -> str:
    """The note of a check: labels identical / max float difference (NaN and inf positions must agree).

    The relative difference is elementwise (metric values, loss values) or, with ``scaled``, relative
    to the largest magnitude of MONAI's tensor (images, gradients: elementwise ratios of values near
    zero say nothing)."""
    a, b = _array(ours), _array(theirs)
    if a.shape != b.shape:
        return f"MISMATCH: shape {a.shape} vs MONAI {b.shape}"
    if labels:
        bad = int(np.count_nonzero(a != b))
        text = "labels identical" if bad == 0 else f"MISMATCH: {bad} voxels differ"
        return text + (f", dtype {a.dtype} vs {b.dtype}" if a.dtype != b.dtype else "") + _meta_note(ours, theirs)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    special = ~np.isfinite(b64)
    if not np.array_equal(np.isnan(a64), np.isnan(b64)) or not np.array_equal(a64[special & ~np.isnan(b64)],
                                                                             b64[special & ~np.isnan(b64)]):
        return "MISMATCH: NaN/inf positions differ" + _meta_note(ours, theirs)
    fin = ~special
    if not fin.any():
        return "identical (all NaN/inf)"
    diff = np.abs(a64[fin] - b64[fin])
    abs_max = float(diff.max())
    if not abs_max:
        rel = 0.0
    elif scaled:
        rel = abs_max / max(float(np.abs(b64[fin]).max()), 1e-300)
    else:
        rel = float((diff / np.maximum(np.abs(b64[fin]), 1e-300)).max())
    kind = "rel diff (to the largest MONAI value)" if scaled else "rel diff"
    text = "identical" if abs_max == 0 else f"max abs diff {abs_max:.1e}, max {kind} {rel:.1e}"
    if rel > 1e-6:
        text = "MISMATCH (> 1e-6 rel): " + text
    if a.dtype != b.dtype:
        text += f", dtype {a.dtype} vs {b.dtype}"
    return text + _meta_note(ours, theirs)


def _scaled(ours, theirs) -> str:
    return _compare(ours, theirs, scaled=True)


# ----------------------------------------------------------------------------- timing
def _release_freed_memory() -> None:
    from .suite_losses import _release_freed_memory as release

    release()


def _timed_with_memory(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak extra MiB) of one call."""
    box: dict[str, Any] = {}

    def go():
        start = time.perf_counter()
        box["out"] = fn()
        box["s"] = time.perf_counter() - start
        return box["out"]

    gc.collect()
    _release_freed_memory()
    mib = peak_extra_memory(go)
    return box["out"], box["s"], mib


def _case(case: str, ours: Callable[[], Any], peer: Callable[[], Any], *, voxels: int, check: Callable[[Any, Any], str],
          repeats: int, extra: dict[str, Callable[[], Any]] | None = None, notes: dict[str, str] | None = None,
          slow: bool = False) -> list[Row]:
    """Rows of one case: ours (+ variants in ``extra``) and MONAI, checked, then timed alternately.

    MONAI is timed once (its checked call) when that call took over SLOW_S or ``slow``; ours then
    runs on its own, with fewer repeats (about BUDGET_S in all) when one call takes over SLOW_S, the
    checked call serving as warm-up and memory measurement, and each variant once; a call of ours
    over BUDGET_S is timed once too (its checked call).
    """
    notes = dict(notes or {})
    extra = extra or {}
    their_out, their_s, their_mib = _timed_with_memory(peer)
    checked: dict[str, tuple[float, float]] = {}
    try:
        for name, fn in {OURS: ours, **extra}.items():
            out, sec, mib = _timed_with_memory(fn)
            notes[name] = (check(out, their_out) + "; " + notes.get(name, "")).strip("; ")
            checked[name] = (sec, mib)
            del out
    except Exception as e:   # noqa: BLE001 -- a crash of ours is reported, not raised
        traceback.print_exc()
        msg = f"CRASH: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
        return [Row(NAME, case, OURS, float("nan"), float("nan"), note=msg),
                Row(NAME, case, PEER, their_s, 0.0, mvox_per_s=voxels / their_s / 1e6, peak_extra_mib=their_mib,
                    note="1 run")]
    del their_out
    our_s = checked[OURS][0]
    slow_ours = our_s > SLOW_S
    reps = max(1, min(repeats, int(BUDGET_S / our_s))) if slow_ours else repeats
    ours_impls = {OURS: ours, **extra}
    memory: dict[str, float] = {}
    timings: dict[str, Timing] = {}
    if slow or their_s > SLOW_S:
        if our_s > BUDGET_S:       # the checked call is the one timed run
            for name in ours_impls:
                timings[name] = Timing([checked[name][0]])
                notes[name] = (notes[name] + "; 1 run").strip("; ")
        elif slow_ours:
            timings.update(measure({OURS: ours}, warmup=0, repeats=reps))
            for name in extra:
                timings[name] = Timing([checked[name][0]])
                notes[name] = (notes[name] + "; 1 run").strip("; ")
        else:
            timings.update(measure(ours_impls, warmup=1, repeats=reps))
        timings[PEER] = Timing([their_s])
        memory[PEER] = their_mib
        notes[PEER] = (notes.get(PEER, "") + "; 1 run").strip("; ")
    else:
        timings.update(measure({**ours_impls, PEER: peer}, warmup=0 if slow_ours else 1, repeats=reps))
        gc.collect()
        _release_freed_memory()
        memory[PEER] = peak_extra_memory(peer)
    for name, fn in ours_impls.items():
        if slow_ours:
            memory[name] = checked[name][1]
        else:
            gc.collect()
            _release_freed_memory()
            memory[name] = peak_extra_memory(fn)
    timings = {name: timings[name] for name in [*ours_impls, PEER]}
    return rows_for_case(NAME, case, timings, ours=OURS, voxels=voxels, memory=memory, notes=notes)


# ----------------------------------------------------------------------------- cases
def _runs_compiled(transform, data) -> bool:
    """Whether `transform` (our Spacingd) takes the compiled resampling path on `data`."""
    import medseg_fast.monai.spatial as sp

    real, hits = sp._resample_axes, []

    def spy(*args, **kwargs):
        hits.append(1)
        return real(*args, **kwargs)

    sp._resample_axes = spy
    try:
        transform(data)
    finally:
        sp._resample_axes = real
    return bool(hits)


def _intensity_cases(quick: bool, repeats: int) -> list[Row]:
    import medseg_fast.monai as ours
    import monai.transforms as mt

    ct = _meta_volume(CT, quick)
    if ct is None:
        print(f"monai suite: {CT} not found (--data / $MEDSEG_BENCH_DATA): intensity and Spacingd rows skipped")
        return []
    data = {"image": ct}
    kinds = [
        ("ScaleIntensityRanged", dict(keys="image", a_min=-1000.0, a_max=1000.0, b_min=0.0, b_max=1.0, clip=True)),
        ("ScaleIntensityRangePercentilesd", dict(keys="image", lower=0.5, upper=99.5, b_min=0.0, b_max=1.0,
                                                 clip=True)),
        ("NormalizeIntensityd", dict(keys="image")),
        ("ScaleIntensityd", dict(keys="image", minv=0.0, maxv=1.0)),
    ]
    rows: list[Row] = []
    for cls, kwargs in kinds:
        a, b = getattr(ours, cls)(**kwargs), getattr(mt, cls)(**kwargs)
        rows += _case(f"{cls} CT float32 MetaTensor {_shape(ct)}", lambda a=a: a(data), lambda b=b: b(data),
                      voxels=ct.numel(), check=_scaled, repeats=repeats)

    for mode in (3, "bilinear"):
        kwargs = dict(keys="image", pixdim=(1.5, 1.5, 2.0), mode=mode)
        a, b = ours.Spacingd(**kwargs), mt.Spacingd(**kwargs)
        what = ("compiled separable path" if _runs_compiled(a, data)
                else "MONAI's code on both sides (the compiled path does not take this case)")
        label = "order 3" if mode == 3 else "bilinear (default)"
        rows += _case(f"Spacingd {label} CT -> 1.5x1.5x2 mm {_shape(ct)}", lambda a=a: a(data), lambda b=b: b(data),
                      voxels=ct.numel(), check=_scaled, repeats=max(2, repeats - 2), notes={OURS: what})
    return rows


def _post_cases(quick: bool, repeats: int) -> list[Row]:
    import medseg_fast.monai as ours
    import monai.transforms as mt

    label = _meta_volume(ATLAS, quick)
    if label is None:
        print(f"monai suite: {ATLAS} not found: post-processing and metric rows skipped")
        return []
    n = int(label.unique().numel()) - 1
    rows: list[Row] = []
    # MONAI writes into a torch input's storage (KeepLargestConnectedComponent): every call gets a fresh copy
    clone_note = "incl. a clone of the input (MONAI writes into it)"
    for cls, kwargs in (("KeepLargestConnectedComponentd", dict(keys="label")),
                        ("RemoveSmallObjectsd", dict(keys="label", min_size=64)),
                        ("FillHolesd", dict(keys="label"))):
        a, b = getattr(ours, cls)(**kwargs), getattr(mt, cls)(**kwargs)
        rows += _case(f"{cls} DK atlas {n} labels float32 {_shape(label)}",
                      lambda a=a: a({"label": label.clone()}), lambda b=b: b({"label": label.clone()}),
                      voxels=label.numel(), check=lambda x, y: _compare(x, y, labels=True), repeats=repeats,
                      notes={OURS: clone_note, PEER: clone_note})
    ct = _meta_volume(CT, quick)
    if ct is not None:
        bone = (ct > 300).float()
        kwargs = dict(keys="label", min_size=64)
        a, b = ours.RemoveSmallObjectsd(**kwargs), mt.RemoveSmallObjectsd(**kwargs)
        rows += _case(f"RemoveSmallObjectsd binary CT bone mask (>300 HU) {_shape(bone)}",
                      lambda: a({"label": bone.clone()}), lambda: b({"label": bone.clone()}),
                      voxels=bone.numel(), check=lambda x, y: _compare(x, y, labels=True), repeats=repeats)
    return rows


def _metric_objects(module, k: int) -> dict[str, Any]:
    return {
        "DiceMetric": module.DiceMetric(include_background=False),
        "MeanIoU": module.MeanIoU(include_background=False),
        "HausdorffDistanceMetric(percentile=95)": module.HausdorffDistanceMetric(include_background=False,
                                                                                 percentile=95),
        "SurfaceDistanceMetric(symmetric)": module.SurfaceDistanceMetric(include_background=False, symmetric=True),
        "SurfaceDiceMetric(1 mm)": module.SurfaceDiceMetric([1.0] * (k - 1), include_background=False),
    }


def _call_metric(metric, p, g, spacing):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if type(metric).__name__ in ("DiceMetric", "MeanIoU"):
            metric(p, g)
        else:
            metric(p, g, spacing=spacing)
        out = metric.aggregate(reduction="none")
    metric.reset()
    return out


def _metric_cases(quick: bool, repeats: int) -> list[Row]:
    import medseg_fast.monai as ours
    import monai.metrics as mm
    from monai.transforms import AsDiscrete

    label = _meta_volume(ATLAS, quick)
    if label is None:
        return []
    k = int(label.max()) + 1
    spacing = tuple(float(s) for s in label.pixdim)
    onehot = AsDiscrete(to_onehot=k)
    g = onehot(label)[None]
    p = onehot(_shifted(label))[None]
    n = int((g.sum(dim=(0, 2, 3, 4)) > 0).sum()) - 1
    rows: list[Row] = []
    a_all, b_all = _metric_objects(ours, k), _metric_objects(mm, k)
    for name in a_all:
        a, b = a_all[name], b_all[name]
        rows += _case(f"{name} DK atlas vs 1-voxel shift, one-hot float32 {_shape(p)}",
                      lambda a=a: _call_metric(a, p, g, spacing), lambda b=b: _call_metric(b, p, g, spacing),
                      voxels=label.numel(), check=_compare, repeats=repeats,
                      notes={OURS: f"{n} classes, per-class values compared"})
    return rows


def _loss_cases(quick: bool, repeats: int) -> list[Row]:
    import medseg_fast.monai as ours
    import monai.losses as ml
    import torch

    shape = (2, 4, 48, 48, 48) if quick else (2, 4, 96, 96, 96)
    gen = torch.Generator().manual_seed(0)
    B, K, *sp = shape
    x = (2.0 * torch.randn(shape, generator=gen)).requires_grad_(True)
    y = torch.randint(0, K, (B, 1, *sp), generator=gen)
    voxels = B * int(np.prod(sp))

    def fwd_bwd(fn):
        def go():
            x.grad = None
            loss = fn(x, y)
            loss.backward()
            return float(loss.detach()), x.grad
        return go

    def check(o, t):
        value = _compare(np.float64(o[0]), np.float64(t[0]))
        grad = _scaled(o[1], t[1])
        return f"value: {value}; grad: {grad}"

    rows: list[Row] = []
    for cls in ("DiceLoss", "DiceCELoss", "DiceFocalLoss"):
        kwargs = dict(to_onehot_y=True, softmax=True)
        a, b = getattr(ours, cls)(**kwargs), getattr(ml, cls)(**kwargs)

        def peer(b=b):
            v, grad = fwd_bwd(b)()
            return v, grad.clone()

        rows += _case(f"{cls}(to_onehot_y, softmax) fwd+bwd float32 {tuple(shape)}", fwd_bwd(a), peer,
                      voxels=voxels, check=check, repeats=repeats)
        x.grad = None
    return rows


def _eval_step(post_module, metric_module, cases, k: int, onehot_dtype=None):
    """KeepLargestConnectedComponentd + FillHolesd on each prediction, one-hot, then the four metrics."""
    import torch
    from monai.transforms import AsDiscrete

    keep = post_module.KeepLargestConnectedComponentd(keys="pred")
    fill = post_module.FillHolesd(keys="pred")
    onehot = AsDiscrete(to_onehot=k) if onehot_dtype is None else AsDiscrete(to_onehot=k, dtype=onehot_dtype)
    metrics = {name: m for name, m in _metric_objects(metric_module, k).items() if name != "MeanIoU"}
    for pred, gt, spacing in cases:
        d = fill(keep({"pred": pred.clone()}))    # a copy: MONAI writes into its input
        p, g = onehot(d["pred"])[None], onehot(gt)[None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, m in metrics.items():
                if name == "DiceMetric":
                    m(p, g)
                else:
                    m(p, g, spacing=spacing)
        del p, g, d
    out = {}
    for name, m in metrics.items():
        out[name] = m.aggregate(reduction="none")
        m.reset()
    return torch.stack([out[name] for name in out])      # (4 metrics, cases, classes)


def _step_case(quick: bool) -> list[Row]:
    import medseg_fast.monai as ours
    import monai.metrics as mm
    import monai.transforms as mt
    import torch

    donors = DONORS[:2] if quick else DONORS
    gts = [_meta_volume(f"dk_native_donor{d}_1mm.nii.gz", quick) for d in donors]
    if any(v is None for v in gts):
        print("monai suite: DK donor atlases not found: whole-step row skipped")
        return []
    k = max(int(v.max()) for v in gts) + 1
    cases = [(_shifted(v), v, tuple(float(s) for s in v.pixdim)) for v in gts]
    voxels = sum(v.numel() for v in gts)
    case = (f"eval step: KeepLargestCCd + FillHolesd + Dice/HD95/ASSD/surface Dice, {len(donors)} DK atlases "
            f"({k - 1} classes, 1-voxel shift)")
    bool_name = f"{OURS} (AsDiscrete dtype=bool)"
    return _case(case, lambda: _eval_step(ours, ours, cases, k), lambda: _eval_step(mt, mm, cases, k),
                 voxels=voxels, check=_compare, repeats=2 if quick else 3, slow=True,
                 extra={bool_name: lambda: _eval_step(ours, ours, cases, k, onehot_dtype=torch.bool)},
                 notes={OURS: "float32 one-hot (MONAI's AsDiscrete default) on both sides",
                        bool_name: "bool one-hot, ours only"})


def run(device: str = "cpu", quick: bool = False) -> list[Row]:
    if device != "cpu":
        print("monai suite: CPU only (the MONAI classes' CPU paths); nothing run for", device)
        return []
    repeats = 3 if quick else 5
    rows: list[Row] = []
    rows += _intensity_cases(quick, repeats)
    rows += _post_cases(quick, repeats)
    rows += _metric_cases(quick, repeats)
    rows += _loss_cases(quick, repeats)
    rows += _step_case(quick)
    return rows
