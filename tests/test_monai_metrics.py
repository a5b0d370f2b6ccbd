"""medseg_fast.monai metric classes against the installed MONAI classes of the same name.

Every test runs the same calls through ``monai.metrics.X`` and ``medseg_fast.monai.X`` and
compares per-iteration results (shape, dtype, NaN/inf positions, values; counts-based metrics
exactly), the warnings MONAI emits for empty classes, ``aggregate()`` under every reduction with
``get_not_nans``, ``get_buffer()`` and ``reset()``, on random awkward shapes, empty classes and
crops of the real DK atlas / CT tumour / k-means label maps in tests/data.
"""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import pytest
from conftest import load_volume

torch = pytest.importorskip("torch")
mm = pytest.importorskip("monai.metrics")
MetaTensor = pytest.importorskip("monai.data").MetaTensor
from medseg_fast import monai as fm  # noqa: E402
from monai.utils import MetricReduction  # noqa: E402

NAMES = ["DiceMetric", "MeanIoU", "HausdorffDistanceMetric", "SurfaceDistanceMetric", "SurfaceDiceMetric"]
REDUCTIONS = [m.value for m in MetricReduction]
SURFACE_RTOL = 1e-6


# ----------------------------------------------------------------------------- helpers
def onehot(labels: torch.Tensor, classes: int, dtype=torch.float32) -> torch.Tensor:
    """(B, *spatial) labels -> (B, C, *spatial) one-hot."""
    return torch.nn.functional.one_hot(labels.long(), classes).movedim(-1, 1).to(dtype)


def assert_same(ours, theirs, rtol: float = 0.0, what: str = "") -> None:
    """Same type, shape and dtype; NaN and inf at the same places; values within rtol (0: equal)."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, type(theirs)), what
        assert len(ours) == len(theirs), what
        for a, b in zip(ours, theirs):
            assert_same(a, b, rtol, what)
        return
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), what
        assert ours.keys() == theirs.keys(), what
        for k in theirs:
            assert ours[k] == pytest.approx(theirs[k], rel=rtol, nan_ok=True), (what, k)
        return
    assert type(ours) is type(theirs), (what, type(ours), type(theirs))
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    assert ours.dtype == theirs.dtype, (what, ours.dtype, theirs.dtype)
    assert ours.device == theirs.device, what
    a, b = ours.detach().double().cpu(), theirs.detach().double().cpu()
    assert torch.equal(torch.isnan(a), torch.isnan(b)), (what, a, b)
    assert torch.equal(torch.isposinf(a), torch.isposinf(b)), (what, a, b)
    finite = torch.isfinite(b)
    if rtol == 0.0:
        assert torch.equal(a[finite], b[finite]), (what, a, b)
    else:
        assert torch.allclose(a[finite], b[finite], rtol=rtol, atol=rtol * 1e-3), (what, (a - b).abs().max(), a, b)


def both(name: str, **kwargs):
    """(MONAI's metric, ours) built from the same kwargs."""
    theirs, ours = getattr(mm, name)(**kwargs), getattr(fm, name)(**kwargs)
    assert isinstance(ours, getattr(mm, name))
    return theirs, ours


def recorded(fn, *args, **kwargs):
    """fn(*args, **kwargs) and the messages of the warnings it emitted (all, in order)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    # MONAI's own deprecation notices (get_mask_edges' always_return_as_numpy) are not compared
    return out, [str(w.message) for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning))]


def compare_calls(name, kwargs, calls, rtol=0.0, check_warnings=True):
    """Run every (y_pred, y, call_kwargs) of ``calls`` through both metrics (each call one
    iteration), compare each result and the warnings, then aggregate under every reduction (with
    and without ``get_not_nans``), the buffer, and reset()."""
    theirs, ours = both(name, **kwargs)
    for i, (yp, y, ck) in enumerate(calls):
        copy = lambda t: [v.clone() for v in t] if isinstance(t, list) else t.clone()  # noqa: E731
        yp0, y0 = copy(yp), copy(y)
        r_t, w_t = recorded(theirs, yp, y, **ck)
        r_o, w_o = recorded(ours, yp, y, **ck)
        assert all(torch.equal(a, b) for a, b in zip(yp, yp0))
        assert all(torch.equal(a, b) for a, b in zip(y, y0))
        desc = lambda t: f"list of {len(t)}" if isinstance(t, list) else f"{tuple(t.shape)} {t.dtype}"  # noqa: E731
        what = f"{name} {kwargs} call {i} {desc(yp)} / {desc(y)} {ck}"
        assert_same(r_o, r_t, rtol, what)
        if check_warnings:
            assert w_o == w_t, (what, w_o, w_t)
    assert_same(ours.get_buffer(), theirs.get_buffer(), rtol, f"{name} buffer")
    for red in REDUCTIONS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # torch's warnings for all-NaN reductions
            assert_same(ours.aggregate(red), theirs.aggregate(red), rtol, f"{name} aggregate {red}")
    ours.get_not_nans = theirs.get_not_nans = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same(ours.aggregate(), theirs.aggregate(), rtol, f"{name} aggregate get_not_nans")
    ours.reset()
    theirs.reset()
    assert ours.get_buffer() is None
    assert theirs.get_buffer() is None
    return ours


def labels_with_empties(gen, B, C, spatial):
    """(pred, gt) (B, *spatial) int64 label maps with every empty case: item 0 has no foreground in
    pred, item 1 none in gt (both for the last class of item 2, which then is empty on both sides)."""
    p = torch.randint(0, C, (B,) + spatial, generator=gen)
    g = torch.randint(0, C, (B,) + spatial, generator=gen)
    p[0] = 0
    if B > 1:
        g[1] = 0
    if B > 2 and C > 2:
        p[2][p[2] == C - 1] = 0
        g[2][g[2] == C - 1] = 0
    return p, g


SHAPES_2D = [(3, 3, 7, 5), (3, 4, 1, 9), (4, 2, 13, 1)]
SHAPES_3D = [(3, 4, 6, 5, 3), (3, 3, 4, 1, 5), (1, 2, 1, 1, 1), (3, 5, 9, 7, 2)]


def test_names_and_subclasses():
    for name in NAMES:
        cls = getattr(fm, name)
        assert issubclass(cls, getattr(mm, name))
        assert issubclass(cls, mm.CumulativeIterationMetric)
        assert cls.__name__ == name


# ----------------------------------------------------------------------------- overlap metrics
LAYOUTS = ["onehot", "maps", "onehot_pred_map_gt", "map_pred_onehot_gt"]


@pytest.mark.parametrize("shape", SHAPES_2D + SHAPES_3D, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dice_random(shape, layout):
    gen = torch.Generator().manual_seed(sum(shape) * 7 + len(layout))
    B, C = shape[:2]
    p, g = labels_with_empties(gen, B, C, shape[2:])
    dtypes = {"onehot": (torch.float32, torch.bool), "maps": (torch.int64, torch.float32),
              "onehot_pred_map_gt": (torch.uint8, torch.int32), "map_pred_onehot_gt": (torch.float64, torch.float64)}
    dp, dg = dtypes[layout]
    yp = onehot(p, C, dp) if layout in ("onehot", "onehot_pred_map_gt") else p[:, None].to(dp)
    y = onehot(g, C, dg) if layout in ("onehot", "map_pred_onehot_gt") else g[:, None].to(dg)
    calls = [(yp, y, {}), (yp[1:], y[1:], {}), (y, yp, {})] if B > 1 else [(yp, y, {}), (y, yp, {})]
    if layout == "onehot_pred_map_gt":
        calls = calls[:-1]    # (map, one-hot) with a uint8 one-hot is the other layout's case
    for ib in (True, False):
        for ie in (True, False):
            kw = dict(include_background=ib, ignore_empty=ie, reduction="mean")
            if layout != "onehot":
                kw["num_classes"] = C
            compare_calls("DiceMetric", kw, calls)


def test_dice_num_classes_and_labels():
    gen = torch.Generator().manual_seed(3)
    p, g = labels_with_empties(gen, 3, 5, (8, 7, 6))
    # label values above num_classes and negative ones are never counted
    g[0, 0, 0, :3] = torch.tensor([7, -1, 5])
    for nc in (2, 4, 5):
        compare_calls("DiceMetric", dict(num_classes=nc, include_background=False), [(p[:, None], g[:, None], {})])
    # one-hot y_pred with num_classes < C: MONAI scores the first num_classes channels
    g_ok = g.clamp(0, 4)
    compare_calls("DiceMetric", dict(num_classes=3), [(onehot(p, 5), onehot(g_ok, 5), {})])
    # single-channel binary inputs without num_classes: class 1 only
    bp, bg = (p[:, None] == 1).float(), (g_ok[:, None] == 1).float()
    for ib in (True, False):
        compare_calls("DiceMetric", dict(include_background=ib, ignore_empty=False), [(bp, bg, {}), (bg, bg, {})])
    # float label maps holding integers
    compare_calls("DiceMetric", dict(num_classes=5), [(p[:, None].double(), g[:, None].float(), {})])
    # a one-hot y_pred with a label-map y holding out-of-range values
    compare_calls("DiceMetric", {}, [(onehot(p, 5), g[:, None], {})])


def test_dice_values_that_are_not_masks():
    """Non-binary one-hot values: y_pred is read as nonzero, y's values are summed (soft)."""
    gen = torch.Generator().manual_seed(5)
    yp = torch.rand(2, 3, 6, 7, generator=gen)
    yp[yp < 0.5] = 0
    y = onehot(torch.randint(0, 3, (2, 6, 7), generator=gen), 3)
    soft = y * torch.rand(y.shape, generator=gen)
    compare_calls("DiceMetric", {}, [(yp, y, {}), (y, soft, {}), (yp.half(), y.half(), {})])
    # non-integer single-channel maps: only voxels == c count
    compare_calls("DiceMetric", dict(num_classes=3), [(yp[:, :1] * 3, y[:, :1] * 2, {})])


def test_dice_return_with_label_and_list_input():
    gen = torch.Generator().manual_seed(9)
    p, g = labels_with_empties(gen, 3, 4, (9, 8))
    for rwl in (True, ["a", "b", "c"]):
        theirs, ours = both("DiceMetric", include_background=False, reduction="mean_batch", return_with_label=rwl)
        for m in (theirs, ours):
            m(onehot(p, 4), onehot(g, 4))
        assert_same(ours.aggregate(), theirs.aggregate(), 0.0, "return_with_label")
    # a list of channel-first items
    compare_calls("DiceMetric", {}, [(list(onehot(p, 4)), list(onehot(g, 4)), {})])
    compare_calls("MeanIoU", {}, [(list(onehot(p, 4)), list(onehot(g, 4)), {})])


def test_dice_large_counts_exact():
    """Counts above 2**24 voxels: ours are exact integers, MONAI sums float32 (float32 rounding)."""
    n = 2 ** 24 + 3
    yp = torch.ones(1, 1, n, 1, dtype=torch.bool)
    y = torch.ones(1, 1, n, 1, dtype=torch.bool)
    y[0, 0, :5] = False
    theirs, ours = both("DiceMetric", reduction="none")
    assert_same(ours(yp, y), theirs(yp, y), 1e-6)
    expect = 2 * (n - 5) / (2 * n - 5)
    assert float(ours.get_buffer()[0, 0]) == pytest.approx(expect, rel=1e-7)


@pytest.mark.parametrize("shape", SHAPES_2D + SHAPES_3D, ids=str)
def test_mean_iou_random(shape):
    gen = torch.Generator().manual_seed(sum(shape) * 11)
    B, C = shape[:2]
    p, g = labels_with_empties(gen, B, C, shape[2:])
    calls = [(onehot(p, C), onehot(g, C), {}), (onehot(g, C, torch.bool), onehot(p, C, torch.bool), {}),
             (onehot(p, C, torch.float64), onehot(g, C, torch.int64), {})]
    single = [((p[:, None] > 0).float(), (g[:, None] > 0).float(), {}), ((p[:, None] > 0), (p[:, None] > 1), {})]
    for ib in (True, False):
        for ie in (True, False):
            compare_calls("MeanIoU", dict(include_background=ib, ignore_empty=ie), calls)
            compare_calls("MeanIoU", dict(include_background=ib, ignore_empty=ie), single)


def test_mean_iou_soft_values_run_monai():
    gen = torch.Generator().manual_seed(1)
    yp, y = torch.rand(2, 3, 5, 6, generator=gen), torch.rand(2, 3, 5, 6, generator=gen)
    compare_calls("MeanIoU", dict(include_background=False), [(yp, y, {}), (yp.half(), y.half(), {})])


@pytest.mark.parametrize("name", NAMES)
def test_memory_layouts(name):
    """Channel-first contiguous, channels-last (one_hot().movedim) and transposed spatial views."""
    gen = torch.Generator().manual_seed(14)
    p, g = labels_with_empties(gen, 3, 4, (7, 6, 5))
    extra = dict(class_thresholds=[1.0, 0.5, 2.0]) if name == "SurfaceDiceMetric" else {}
    yp, y = onehot(p, 4), onehot(g, 4)
    calls = [(yp.contiguous(), y.contiguous(), {}), (yp, y, {}), (yp.transpose(2, 4), y.transpose(2, 4), {}),
             (yp.contiguous().bool().transpose(3, 4), y.bool().transpose(3, 4), {}), (yp[:, :, :6:2], y[:, :, 1::2], {})]
    rtol = SURFACE_RTOL if name in NAMES[2:] else 0.0
    compare_calls(name, extra, calls[:3] if name in NAMES[2:] else calls, rtol)
    compare_calls(name, extra, [(MetaTensor(yp), MetaTensor(y, affine=torch.eye(4) * 2), {}), (yp, MetaTensor(y), {})],
                  rtol)


@pytest.mark.parametrize("name", ["DiceMetric", "MeanIoU"])
def test_overlap_metatensor_in_metatensor_out(name):
    gen = torch.Generator().manual_seed(2)
    p, g = labels_with_empties(gen, 2, 3, (6, 5, 4))
    yp = MetaTensor(onehot(p, 3), affine=torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0])), meta={"filename_or_obj": "p"})
    y = MetaTensor(onehot(g, 3), affine=torch.eye(4) * 5, meta={"filename_or_obj": "g"})
    for a, b in [(yp, y), (yp, y.as_tensor()), (yp.as_tensor(), y)]:
        theirs, ours = both(name)
        r_t, r_o = theirs(a, b), ours(a, b)
        assert_same(r_o, r_t, 0.0, name)
        assert torch.equal(r_o.affine, r_t.affine)
        assert r_o.meta["filename_or_obj"] == r_t.meta["filename_or_obj"]
        assert r_o.is_batch == r_t.is_batch
        assert r_o.applied_operations == r_t.applied_operations
        assert_same(ours.aggregate(), theirs.aggregate(), 0.0, name)
    # a collated batch (is_batch=True, per-item meta)
    from monai.data import list_data_collate
    items = [{"p": MetaTensor(onehot(p, 3)[b], meta={"filename_or_obj": f"p{b}"}),
              "g": MetaTensor(onehot(g, 3)[b], meta={"filename_or_obj": f"g{b}"})} for b in range(2)]
    batch = list_data_collate(items)
    theirs, ours = both(name)
    r_t, r_o = theirs(batch["p"], batch["g"]), ours(batch["p"], batch["g"])
    assert_same(r_o, r_t, 0.0, name)
    assert r_o.meta.keys() == r_t.meta.keys()
    assert r_o.is_batch == r_t.is_batch
    for k, v in r_t.meta.items():
        assert torch.equal(r_o.meta[k], v) if isinstance(v, torch.Tensor) else r_o.meta[k] == v, k


# ----------------------------------------------------------------------------- surface metrics
def surface_variants(name, C, include_background):
    """Constructor kwargs of one surface metric covering its options."""
    if name == "HausdorffDistanceMetric":
        return [dict(percentile=p, directed=d) for p, d in
                [(None, False), (95, False), (95, True), (0, True), (50.5, False), (100, True), (None, True)]]
    if name == "SurfaceDistanceMetric":
        return [dict(symmetric=s) for s in (False, True)]
    k = C - (0 if include_background or C == 1 else 1)
    return [dict(class_thresholds=[float(t) for t in np.linspace(0.0, 2.5, k)]),
            dict(class_thresholds=[1.0] * k), dict(class_thresholds=[1] * (k - 1) + [3])]


def spacings(ndim, B):
    return [None, 0.7, [0.5 + 0.4 * i for i in range(ndim)], [[1.0 + b] * ndim for b in range(B)],
            [[1.5 + 0.1 * b] + [0.8] * (ndim - 1) for b in range(B)], np.array([0.6, 1.3, 2.0][:ndim])]


@pytest.mark.parametrize("name", NAMES[2:])
@pytest.mark.parametrize("shape", [(3, 3, 7, 5), (3, 3, 1, 9), (3, 4, 6, 5, 3), (3, 3, 4, 1, 5), (2, 2, 1, 1, 1),
                                   (3, 1, 6, 5, 4)],
                         ids=str)
def test_surface_random(name, shape):
    gen = torch.Generator().manual_seed(sum(shape) * 13 + len(name))
    B, C = shape[:2]
    p, g = labels_with_empties(gen, B, C, shape[2:])
    yp, y = onehot(p, C), onehot(g, C)
    sps = spacings(len(shape) - 2, B)
    for ib in (True, False):
        for j, kw in enumerate(surface_variants(name, C, ib)):
            picks = [sps[(2 * j + k + ib) % len(sps)] for k in range(3)]
            calls = [(yp, y, {"spacing": picks[0]}), (y, yp, {"spacing": picks[1]}), (yp, y, {"spacing": picks[2]})]
            compare_calls(name, dict(include_background=ib, reduction="mean", **kw), calls, SURFACE_RTOL)


@pytest.mark.parametrize("name", NAMES[2:])
def test_surface_input_dtypes_and_overlapping_channels(name):
    """bool / int / float64 one-hot inputs, non-exclusive (multi-label) channels, values that are
    not 0/1 (only voxels == 1 are foreground in MONAI)."""
    gen = torch.Generator().manual_seed(4)
    yp = torch.rand(2, 3, 9, 8, 5, generator=gen) > 0.6
    y = torch.rand(2, 3, 9, 8, 5, generator=gen) > 0.6
    y[1, 2] = False
    extra = dict(class_thresholds=[0.5, 1.5]) if name == "SurfaceDiceMetric" else {}
    calls = [(yp, y, {}), (yp.long(), y.long(), {"spacing": [1.0, 2.0, 0.5]}), (yp.double(), y.float(), {}),
             (yp * 2.0, y * 1.0, {}), (yp * 0.5 + y * 0.5, y.float(), {"spacing": 2.0}),
             # 1 + 1e-9 is 1 in float32: foreground for Hausdorff / surface distance (MONAI converts to
             # float32), not for surface Dice (MONAI compares the float64 values)
             (yp.double() * (1 + 1e-9), y.double(), {}), (yp.bfloat16(), y.to(torch.bfloat16), {}),
             (yp.to(torch.uint8), y.to(torch.int16), {})]
    compare_calls(name, dict(**extra), calls, SURFACE_RTOL)


@pytest.mark.parametrize("name", NAMES[2:])
def test_surface_delegated_options(name):
    """distance_metric other than euclidean and SurfaceDice's use_subvoxels run MONAI's code."""
    gen = torch.Generator().manual_seed(6)
    p, g = labels_with_empties(gen, 3, 3, (7, 8, 6))
    calls = [(onehot(p, 3), onehot(g, 3), {}), (onehot(g, 3), onehot(p, 3), {"spacing": [1.0, 2.0, 3.0]})]
    extra = dict(class_thresholds=[1.0, 2.0]) if name == "SurfaceDiceMetric" else {}
    for dm in ("chessboard", "taxicab"):
        compare_calls(name, dict(distance_metric=dm, **extra), calls, 0.0)
    if name == "SurfaceDiceMetric":
        compare_calls(name, dict(use_subvoxels=True, **extra), calls[1:], 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_ignore_index_runs_monai(name):
    gen = torch.Generator().manual_seed(8)
    p, g = labels_with_empties(gen, 2, 3, (7, 6, 5))
    extra = dict(class_thresholds=[1.0, 2.0]) if name == "SurfaceDiceMetric" else {}
    compare_calls(name, dict(ignore_index=2, **extra), [(onehot(p, 3), onehot(g, 3), {})], SURFACE_RTOL)


def test_surface_four_spatial_axes_and_one_axis():
    gen = torch.Generator().manual_seed(10)
    p = torch.randint(0, 2, (2, 4, 3, 5, 2), generator=gen)
    g = torch.randint(0, 2, (2, 4, 3, 5, 2), generator=gen)
    for name in NAMES[2:4]:
        compare_calls(name, {}, [(onehot(p, 2), onehot(g, 2), {})], SURFACE_RTOL)
        compare_calls(name, {}, [(onehot(p[:, :, 0, 0], 2), onehot(g[:, :, 0, 0], 2), {"spacing": 2.0})],
                      SURFACE_RTOL)
    compare_calls("DiceMetric", {}, [(onehot(p, 2), onehot(g, 2), {})])
    compare_calls("DiceMetric", dict(num_classes=2), [(p[:, None], g[:, None], {})])


# ----------------------------------------------------------------------------- real label maps
def _real(name, box):
    arr, sp = load_volume(name)
    arr = torch.from_numpy(arr.astype(np.int64))[box]
    return arr, sp


REAL = [("dk_atlas_mni_1mm.nii.gz", np.s_[66:94, 76:104, 56:84], 3),
        ("ct_chest_lung2_crop_tumor_label.nii.gz", np.s_[6:26, 40:88, 40:88], 1),
        ("itk_kmeans_t1_seg6.nii.gz", np.s_[25:35, 40:80, 40:80], 3)]


@pytest.mark.parametrize("volume", REAL, ids=[r[0].split(".")[0] for r in REAL])
def test_real_label_maps_shifted(volume):
    """A crop of a real label map vs itself shifted by one voxel (and a second axis), a batch of
    two, at the volume's spacing: every metric, a MONAI config per metric."""
    fname, box, k = volume
    lab, sp = _real(fname, box)
    values, freq = torch.unique(lab[lab > 0], return_counts=True)
    labels = [0] + sorted(int(v) for v in values[torch.argsort(freq, descending=True)[:k]])
    assert len(labels) == k + 1
    remap = torch.zeros(int(lab.max()) + 1, dtype=torch.int64)
    for i, v in enumerate(labels):
        if v <= lab.max():
            remap[v] = i
    lab = remap[lab.clamp(max=len(remap) - 1)] * torch.isin(lab, torch.tensor(labels))
    C = len(labels)
    gt = torch.stack([lab, lab])
    pred = torch.stack([torch.roll(lab, 1, dims=2), torch.roll(torch.roll(lab, -1, dims=0), 1, dims=1)])
    oh_p, oh_g = onehot(pred, C), onehot(gt, C)
    compare_calls("DiceMetric", dict(num_classes=C, include_background=False, reduction="mean_batch"),
                  [(pred[:, None], gt[:, None], {}), (oh_p, gt[:, None], {})])
    compare_calls("MeanIoU", dict(include_background=False), [(oh_p, oh_g, {})])
    for name, kw in [("HausdorffDistanceMetric", dict(percentile=95)), ("HausdorffDistanceMetric", {}),
                     ("SurfaceDistanceMetric", dict(symmetric=True)),
                     ("SurfaceDiceMetric", dict(class_thresholds=[1.0] * (C - 1)))]:
        compare_calls(name, dict(reduction="mean_channel", **kw),
                      [(oh_p, oh_g, {"spacing": sp}), (oh_g, oh_p, {"spacing": [sp, tuple(reversed(sp))]})],
                      SURFACE_RTOL)


def test_real_dk_atlas_dice_all_labels():
    """All 84 DK labels of a label map vs its shifted copy, label-map inputs (num_classes)."""
    arr, _ = load_volume("dk_atlas_mni_1mm.nii.gz")
    lab = torch.from_numpy(arr.astype(np.int64))[None, None, ::5, ::5, ::5]
    shifted = torch.roll(lab, 1, dims=3)
    compare_calls("DiceMetric", dict(num_classes=84, ignore_empty=False), [(shifted, lab, {})])


# ----------------------------------------------------------------------------- config, errors
def test_monai_config_constructs_ours():
    configs = {
        "DiceMetric": dict(include_background=False, reduction="mean_batch", get_not_nans=True, ignore_empty=False,
                           num_classes=4, return_with_label=True),
        "MeanIoU": dict(include_background=False, reduction=MetricReduction.SUM_CHANNEL, get_not_nans=True,
                        ignore_empty=False),
        "HausdorffDistanceMetric": dict(include_background=True, distance_metric="euclidean", percentile=95.0,
                                        directed=True, reduction="mean_batch", get_not_nans=True),
        "SurfaceDistanceMetric": dict(include_background=True, symmetric=True, distance_metric="euclidean",
                                      reduction="sum", get_not_nans=False),
        "SurfaceDiceMetric": dict(class_thresholds=[1.0, 2.0], include_background=False, distance_metric="euclidean",
                                  reduction="none", get_not_nans=True, use_subvoxels=False),
    }
    for name, cfg in configs.items():
        theirs, ours = both(name, **cfg)
        assert vars(ours).keys() == vars(theirs).keys()
        for k, v in vars(theirs).items():
            if k not in ("_buffers", "_synced_tensors", "_synced", "dice_helper"):
                assert vars(ours)[k] == v, (name, k)


def _exception_of(fn):
    """What ``fn()`` raises, or None."""
    try:
        fn()
    except Exception as e:   # noqa: BLE001 -- whatever MONAI raises is the expectation
        return e
    return None


def _raises_like(fn_theirs, fn_ours):
    expected = _exception_of(fn_theirs)
    assert expected is not None, "MONAI raised nothing"
    with pytest.raises(type(expected), match=f"^{re.escape(str(expected))}$"):
        fn_ours()


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_like_monai(name):
    extra = dict(class_thresholds=[1.0]) if name == "SurfaceDiceMetric" else {}
    theirs, ours = both(name, **extra)
    a = torch.zeros(2, 2, 5, 6)
    cases = [(torch.zeros(2, 5), torch.zeros(2, 5)), (a, torch.zeros(2, 2, 5, 7)), (a, torch.zeros(2, 3, 5, 6)),
             ("text", a)]
    if name == "SurfaceDiceMetric":
        cases.append((torch.zeros(2, 3, 5, 6), torch.zeros(2, 3, 5, 6)))   # 2 classes, 1 threshold
    for yp, y in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = _exception_of(lambda yp=yp, y=y: theirs(yp, y))
            if expected is not None:
                with pytest.raises(type(expected), match=f"^{re.escape(str(expected))}$"):
                    ours(yp, y)
            else:
                assert_same(ours(yp, y), theirs(yp, y), 0.0, name)
    if name == "SurfaceDiceMetric":
        for bad in ([-1.0], [float("inf")]):
            t, o = both(name, class_thresholds=bad)
            _raises_like(lambda t=t: t(a[:, 1:], a[:, 1:]), lambda o=o: o(a[:, 1:], a[:, 1:]))
    if name == "HausdorffDistanceMetric":
        y = torch.zeros(1, 2, 5, 6)
        y[0, 1, 2, 2] = 1
        t, o = both(name, percentile=101)
        _raises_like(lambda: t(y, y), lambda: o(y, y))


def test_bad_spacing_raises_like_monai():
    y = torch.zeros(2, 2, 5, 6, 4)
    y[:, 1, 2, 2, 1] = 1
    for name in NAMES[2:]:
        extra = dict(class_thresholds=[1.0]) if name == "SurfaceDiceMetric" else {}
        for sp in ([1.0, 2.0], [[1.0, 2.0, 3.0]], [[1.0, 1.0, 1.0], [1.0, 2.0]]):
            t, o = both(name, **extra)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _raises_like(lambda t=t, sp=sp: t(y, y, spacing=sp), lambda o=o, sp=sp: o(y, y, spacing=sp))


def test_aggregate_errors_like_monai():
    for name in NAMES:
        extra = dict(class_thresholds=[1.0]) if name == "SurfaceDiceMetric" else {}
        t, o = both(name, **extra)
        _raises_like(t.aggregate, o.aggregate)   # empty buffer
        y = torch.zeros(1, 2, 4, 4)
        y[0, 1, 1, 1] = 1
        t(y, y)
        o(y, y)
        _raises_like(lambda t=t: t.aggregate("bogus"), lambda o=o: o.aggregate("bogus"))


# ----------------------------------------------------------------------------- the fast path runs
def test_fast_paths_do_not_run_monai(monkeypatch):
    """The options the classes claim to compute themselves never reach MONAI's computation."""
    def refuse(*args, **kwargs):
        raise AssertionError("MONAI's code ran")

    for name in NAMES:
        monkeypatch.setattr(getattr(mm, name), "_compute_tensor", refuse)
    gen = torch.Generator().manual_seed(12)
    p, g = labels_with_empties(gen, 3, 4, (9, 7, 5))
    yp, y = onehot(p, 4), onehot(g, 4)
    for ib, ie in itertools.product((True, False), (True, False)):
        fm.DiceMetric(include_background=ib, ignore_empty=ie)(yp, y)
        fm.DiceMetric(include_background=ib, ignore_empty=ie, num_classes=4)(p[:, None], g[:, None])
        fm.DiceMetric(include_background=ib, ignore_empty=ie)(yp.bool(), g[:, None])
        fm.MeanIoU(include_background=ib, ignore_empty=ie)(yp, y.bool())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sp in (None, 0.5, [1.0, 2.0, 3.0], [[1.0, 1.0, 1.0], [2.0, 1.0, 1.0], [1.0, 1.0, 0.5]]):
            for pct, directed in ((None, False), (95, True)):
                fm.HausdorffDistanceMetric(percentile=pct, directed=directed)(yp, y, spacing=sp)
            fm.SurfaceDistanceMetric(symmetric=True)(yp, y, spacing=sp)
            fm.SurfaceDiceMetric(class_thresholds=[1.0, 2.0, 0.5])(yp, y, spacing=sp)
        fm.HausdorffDistanceMetric()(yp[:, :, :, :, 0], y[:, :, :, :, 0])


def test_dice_per_component_runs_monai():
    gen = torch.Generator().manual_seed(15)
    p, g = labels_with_empties(gen, 2, 2, (9, 8, 7))
    for ie in (True, False):
        compare_calls("DiceMetric", dict(per_component=True, ignore_empty=ie), [(onehot(p, 2), onehot(g, 2), {})])
    t, o = both("DiceMetric", per_component=True)
    _raises_like(lambda: t(onehot(p, 3), onehot(g, 3)), lambda: o(onehot(p, 3), onehot(g, 3)))
