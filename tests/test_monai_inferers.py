"""medseg_fast.monai inferers vs MONAI: SlidingWindowInferer, and the mergers under PatchInferer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
monai = pytest.importorskip("monai")

import monai.inferers.inferer as monai_inferer_module  # noqa: E402
from conftest import load_volume  # noqa: E402
from monai.data import MetaTensor  # noqa: E402
from monai.data.utils import compute_importance_map  # noqa: E402
from monai.inferers import AvgMerger as MonaiAvgMerger  # noqa: E402
from monai.inferers import PatchInferer, SlidingWindowSplitter  # noqa: E402
from monai.inferers import SlidingWindowInferer as MonaiSWI  # noqa: E402

import medseg_fast.monai as fm  # noqa: E402
from medseg_fast.monai import AvgMerger, GaussianMerger, SlidingWindowInferer  # noqa: E402
from medseg_fast.monai import inferers as inferers_module  # noqa: E402

RTOL = 1e-6   # float32: the same products and sums as MONAI, up to rounding of the weight sums


def conv_net(in_channels: int, out_channels: int, ndim: int, seed: int = 0):
    """A deterministic non-pointwise 'network' (3^n conv, softmax): positive outputs."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn((out_channels, in_channels) + (3,) * ndim, generator=gen) * 0.3
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[ndim]

    def net(p):
        return torch.tanh(conv(p, weight, padding=1)).softmax(1)

    return net


def assert_monai_close(ours, expected, rtol=RTOL):
    assert type(ours) is type(expected)
    assert ours.shape == expected.shape and ours.dtype == expected.dtype and ours.device == expected.device
    torch.testing.assert_close(torch.as_tensor(ours), torch.as_tensor(expected), rtol=rtol, atol=1e-7)


@pytest.fixture
def paths(monkeypatch):
    """Counts of fast-path runs and of MONAI sliding_window_inference runs."""
    counts = {"fast": 0, "monai": 0}
    fast, slow = inferers_module._swi, monai_inferer_module.sliding_window_inference

    def fast_spy(*a, **k):
        counts["fast"] += 1
        return fast(*a, **k)

    def slow_spy(*a, **k):
        counts["monai"] += 1
        return slow(*a, **k)

    monkeypatch.setattr(inferers_module, "_swi", fast_spy)
    monkeypatch.setattr(monai_inferer_module, "sliding_window_inference", slow_spy)
    return counts


# ----------------------------------------------------------------------------- parity, fast path
SWI_CASES = [
    # shape, roi, overlap, mode, sw_batch_size, out channels
    ((1, 1, 37, 41), (16, 16), 0.25, "constant", 1, 2),
    ((1, 2, 37, 41), (16, 16), 0.25, "gaussian", 4, 3),
    ((2, 2, 20, 33), (8, 12), 0.5, "constant", 3, 1),
    ((1, 1, 10, 7), (16, 16), 0.5, "gaussian", 2, 2),          # roi larger than the image
    ((1, 1, 10, 40), (16, 8), 0.6, "gaussian", 5, 4),          # larger along one axis only
    ((1, 3, 31, 17), (7, 5), 0.0, "gaussian", 7, 5),
    ((1, 2, 30, 23, 20), (16, 16, 16), 0.6, "gaussian", 4, 3),
    ((2, 1, 13, 29, 17), (8, 12, 9), 0.5, "constant", 5, 2),
    ((1, 1, 5, 40, 3), (8, 16, 8), 0.3, "gaussian", 4, 2),
    ((1, 1, 31, 1, 17), (7, 1, 5), 0.75, "gaussian", 3, 2),
    ((1, 1, 57), (20,), 0.5, "gaussian", 2, 3),                # one spatial axis
]


@pytest.mark.parametrize(("shape", "roi", "overlap", "mode", "bs", "k"), SWI_CASES)
def test_matches_monai_inferer(shape, roi, overlap, mode, bs, k, paths):
    x = torch.rand(shape)
    net = conv_net(shape[1], k, len(roi))
    kw = {"roi_size": roi, "sw_batch_size": bs, "overlap": overlap, "mode": mode}
    expected = MonaiSWI(**kw)(x, net)
    before = x.clone()
    ours = SlidingWindowInferer(**kw)(x, net)
    assert paths == {"fast": 1, "monai": 1}
    assert_monai_close(ours, expected)
    torch.testing.assert_close(x, before, rtol=0, atol=0)   # input unchanged


@pytest.mark.parametrize("overlap", [0.0, 0.1, 0.25, 0.5, 0.7, 0.85, (0.5, 0.2)])
@pytest.mark.parametrize("mode", ["constant", "gaussian"])
def test_overlaps_and_modes(overlap, mode, rng):
    shape = (1, 1) + tuple(int(v) for v in rng.integers(9, 45, 2))
    roi = tuple(int(v) for v in rng.integers(7, 24, 2))
    x = torch.rand(shape)
    net = conv_net(1, 2, 2)
    kw = {"roi_size": roi, "sw_batch_size": int(rng.integers(1, 6)), "overlap": overlap, "mode": mode,
          "sigma_scale": float(rng.uniform(0.08, 0.5))}
    assert_monai_close(SlidingWindowInferer(**kw)(x, net), MonaiSWI(**kw)(x, net))


def test_defaults_and_roi_fallbacks(paths):
    x = torch.rand(1, 2, 26, 19)
    net = conv_net(2, 3, 2)
    for roi in [(-1, 8), (None, 8), (12, 0), 8, (30, 30)]:
        assert_monai_close(SlidingWindowInferer(roi)(x, net), MonaiSWI(roi)(x, net))
    assert paths["fast"] == 5
    ours, theirs = SlidingWindowInferer((8, 8)), MonaiSWI((8, 8))
    for name in ("sw_batch_size", "overlap", "mode", "sigma_scale", "padding_mode", "cval", "buffer_dim", "with_coord"):
        assert getattr(ours, name) == getattr(theirs, name), name


def test_sigma_scale_per_axis_3d():
    x = torch.rand(1, 1, 21, 18, 25)
    net = conv_net(1, 2, 3)
    kw = {"roi_size": (10, 12, 8), "overlap": 0.4, "mode": "gaussian", "sigma_scale": (0.1, 0.25, 0.5),
          "sw_batch_size": 4}
    assert_monai_close(SlidingWindowInferer(**kw)(x, net), MonaiSWI(**kw)(x, net))


def test_metatensor_meta_and_plain_tensor(paths):
    affine = torch.tensor([[0.0, 0, 2, 5], [0, 1.5, 0, -3], [3, 0, 0, 1], [0, 0, 0, 1]], dtype=torch.float64)
    x = MetaTensor(torch.rand(1, 1, 17, 22, 13), affine=affine, meta={"filename_or_obj": "scan.nii.gz", "foo": 7})
    net = conv_net(1, 3, 3)
    kw = {"roi_size": (8, 8, 8), "sw_batch_size": 2, "overlap": 0.5, "mode": "gaussian"}
    expected = MonaiSWI(**kw)(x, net)
    ours = SlidingWindowInferer(**kw)(x, net)
    assert paths["fast"] == 1
    assert isinstance(ours, MetaTensor)
    assert_monai_close(ours, expected)
    torch.testing.assert_close(ours.affine, expected.affine, rtol=0, atol=0)
    assert ours.meta["filename_or_obj"] == "scan.nii.gz" and ours.meta["foo"] == 7
    assert set(ours.meta) == set(expected.meta)
    assert len(ours.applied_operations) == len(expected.applied_operations)
    plain = SlidingWindowInferer(**kw)(x.as_tensor(), net)
    assert type(plain) is torch.Tensor
    torch.testing.assert_close(plain, ours.as_tensor(), rtol=0, atol=0)


def test_strided_input_unchanged():
    base = torch.rand(1, 2, 30, 25)
    x = base.transpose(2, 3)   # a non-contiguous view
    before = x.clone()
    net = conv_net(2, 2, 2)
    kw = {"roi_size": (12, 10), "sw_batch_size": 3, "overlap": 0.5, "mode": "gaussian"}
    assert_monai_close(SlidingWindowInferer(**kw)(x, net), MonaiSWI(**kw)(x.contiguous(), net))
    torch.testing.assert_close(x, before, rtol=0, atol=0)


def test_network_args_kwargs_and_channel_change(paths):
    x = torch.rand(2, 3, 19, 23)
    weight = torch.randn(5, 3, 1, 1)

    def net(p, scale, *, shift=0.0):
        return torch.sigmoid(torch.nn.functional.conv2d(p, weight) * scale + shift)

    kw = {"roi_size": (8, 16), "sw_batch_size": 4, "overlap": 0.3, "mode": "gaussian"}
    expected = MonaiSWI(**kw)(x, net, 2.0, shift=0.5)
    ours = SlidingWindowInferer(**kw)(x, net, 2.0, shift=0.5)
    assert ours.shape == (2, 5, 19, 23)
    assert paths["fast"] == 1
    assert_monai_close(ours, expected)


def test_cached_roi_weight_map(paths):
    x = torch.rand(1, 1, 40, 33)
    net = conv_net(1, 2, 2)
    kw = {"roi_size": (16, 12), "overlap": 0.5, "mode": "gaussian", "cache_roi_weight_map": True, "sw_batch_size": 4}
    ours = SlidingWindowInferer(**kw)
    assert ours.roi_weight_map is not None
    assert_monai_close(ours(x, net), MonaiSWI(**kw)(x, net))
    assert paths == {"fast": 1, "monai": 1}
    # a map that is not MONAI's Gaussian: MONAI's loop uses it
    custom = torch.rand(16, 12) + 0.1
    theirs = MonaiSWI(**kw)
    ours.roi_weight_map = custom
    theirs.roi_weight_map = custom
    assert_monai_close(ours(x, net), theirs(x, net), rtol=0)
    assert paths == {"fast": 1, "monai": 3}


def test_device_and_cpu_thresh(paths):
    x = torch.rand(1, 1, 20, 20)
    net = conv_net(1, 2, 2)
    for kw in [{"device": "cpu"}, {"sw_device": "cpu"}, {"cpu_thresh": 10}]:
        ours = SlidingWindowInferer((8, 8), overlap=0.5, **kw)(x, net)
        assert ours.device.type == "cpu"
        assert_monai_close(ours, MonaiSWI((8, 8), overlap=0.5, **kw)(x, net))
    # call-time device keyword (as SlidingWindowInfererAdapt passes it)
    assert_monai_close(SlidingWindowInferer((8, 8))(x, net, device="cpu"), MonaiSWI((8, 8))(x, net, device="cpu"))
    assert paths["fast"] == 4


@pytest.mark.cuda
def test_cuda_input_stays_on_cuda():
    x = torch.rand(1, 2, 33, 27, 19, device="cuda")
    net = conv_net(2, 3, 3)
    weight_net = lambda p: net(p.cpu()).to(p.device)  # noqa: E731 - identical arithmetic on both paths
    kw = {"roi_size": (16, 16, 8), "sw_batch_size": 4, "overlap": 0.5, "mode": "gaussian"}
    ours = SlidingWindowInferer(**kw)(x, weight_net)
    expected = MonaiSWI(**kw)(x, weight_net)
    assert ours.device == x.device
    torch.testing.assert_close(ours.cpu(), expected.cpu(), rtol=1e-5, atol=1e-6)   # GPU exp() may round differently
    cpu_out = SlidingWindowInferer(**kw, device="cpu")(x, weight_net)
    assert cpu_out.device.type == "cpu"


def test_real_volume():
    volume, _ = load_volume("ct_chest_lung2_crop_hu.nii.gz")
    x = torch.from_numpy(np.clip((volume.astype(np.float32) + 1000) / 1400, 0, 1))[None, None]
    net = conv_net(1, 3, 3)
    kw = {"roi_size": (48, 64, 64), "sw_batch_size": 2, "overlap": 0.5, "mode": "gaussian"}
    assert_monai_close(SlidingWindowInferer(**kw)(x, net), MonaiSWI(**kw)(x, net))


# ----------------------------------------------------------------------------- delegated to MONAI
def _tuple_net(p):
    return p * 2, p + 1


def _dict_net(p):
    return {"a": p * 2, "b": p.mean(1, keepdim=True)}


def _zoom_net(p):
    return torch.nn.functional.avg_pool2d(p, 2)


def _half_net(p):
    return (p * 3).half()


DELEGATED = [
    ({"padding_mode": "reflect"}, (1, 1, 6, 20), None),
    ({"padding_mode": "replicate"}, (1, 1, 6, 20), None),
    ({"cval": 0.5}, (1, 1, 6, 20), None),
    ({"buffer_steps": 2}, (1, 1, 30, 20), None),
    ({"buffer_steps": 1, "buffer_dim": 0}, (1, 1, 30, 20), None),
    ({}, (1, 1, 30, 20), _tuple_net),
    ({}, (1, 1, 30, 20), _dict_net),
    ({}, (1, 1, 32, 24), _zoom_net),
    ({}, (1, 1, 30, 20), _half_net),
]


@pytest.mark.parametrize(("extra", "shape", "net"), DELEGATED)
def test_delegated_cases_give_monai_result(extra, shape, net, paths):
    x = torch.rand(shape)
    net = net or conv_net(1, 2, 2)
    kw = {"roi_size": (8, 8), "sw_batch_size": 3, "overlap": 0.5, "mode": "gaussian", **extra}
    expected = MonaiSWI(**kw)(x, net)
    ours = SlidingWindowInferer(**kw)(x, net)
    assert paths["monai"] == 2
    if isinstance(expected, dict):
        assert set(ours) == set(expected)
        for key in expected:
            torch.testing.assert_close(ours[key], expected[key], rtol=0, atol=0)
    elif isinstance(expected, tuple):
        assert len(ours) == len(expected)
        for a, b in zip(ours, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    else:
        torch.testing.assert_close(ours, expected, rtol=0, atol=0)


def test_padding_mode_irrelevant_without_padding(paths):
    x = torch.rand(1, 1, 30, 20)
    net = conv_net(1, 2, 2)
    kw = {"roi_size": (8, 8), "overlap": 0.5, "padding_mode": "reflect", "cval": 3.0}
    assert_monai_close(SlidingWindowInferer(**kw)(x, net), MonaiSWI(**kw)(x, net))
    assert paths == {"fast": 1, "monai": 1}


def test_with_coord_and_condition_delegated(paths):
    x = torch.rand(1, 1, 20, 18)
    seen = []

    def net(p, coords):
        seen.append(len(coords))
        return p * 2

    assert_monai_close(SlidingWindowInferer((8, 8), with_coord=True)(x, net),
                       MonaiSWI((8, 8), with_coord=True)(x, net), rtol=0)
    assert seen and paths == {"fast": 0, "monai": 2}
    cond = torch.rand(1, 1, 20, 18)

    def cnet(p, condition=None):
        return p + condition

    assert_monai_close(SlidingWindowInferer((8, 8))(x, cnet, condition=cond), MonaiSWI((8, 8))(x, cnet, condition=cond),
                       rtol=0)
    assert paths["fast"] == 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_input_dtypes_delegated(dtype, paths):
    x = torch.rand(1, 1, 20, 18).to(dtype)
    net = lambda p: p * 2 + 1  # noqa: E731
    ours = SlidingWindowInferer((8, 8), overlap=0.5, mode="gaussian")(x, net)
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, MonaiSWI((8, 8), overlap=0.5, mode="gaussian")(x, net), rtol=0, atol=0)
    assert paths["fast"] == 0


# ----------------------------------------------------------------------------- autograd
def test_autograd_goes_to_monai(paths):
    """A trainable network outside no_grad: MONAI's loop runs (after one probing call) and
    gradients reach the parameters exactly as through MONAI's inferer."""
    torch.manual_seed(3)
    model = torch.nn.Conv2d(1, 2, 3, padding=1)
    x = torch.rand(1, 1, 20, 18)
    kw = {"roi_size": (8, 8), "overlap": 0.5, "mode": "gaussian", "sw_batch_size": 2}
    ours = SlidingWindowInferer(**kw)(x, model)
    assert ours.requires_grad
    assert paths == {"fast": 1, "monai": 1}   # the fast path's first call found a graph: MONAI ran
    ours.square().sum().backward()
    grad_ours = model.weight.grad.clone()
    model.zero_grad()
    expected = MonaiSWI(**kw)(x, model)
    expected.square().sum().backward()
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    torch.testing.assert_close(grad_ours, model.weight.grad, rtol=0, atol=0)
    # inputs that require grad: straight to MONAI, gradient w.r.t. the input
    xg = x.clone().requires_grad_(True)
    weight = torch.randn(2, 1, 3, 3)
    out = SlidingWindowInferer(**kw)(xg, lambda p: torch.nn.functional.conv2d(p, weight, padding=1))
    out.sum().backward()
    assert xg.grad is not None and float(xg.grad.abs().sum()) > 0
    # under no_grad the trainable model takes the fast path
    with torch.no_grad():
        fast = SlidingWindowInferer(**kw)(x, model)
    assert not fast.requires_grad
    assert paths == {"fast": 2, "monai": 3}
    assert_monai_close(fast, expected.detach())


def test_network_calls_per_batch_of_windows():
    x = torch.rand(1, 1, 30, 20)   # MONAI positions: 7 x 4 windows of 8 x 8 at overlap 0.5
    calls = []
    net = conv_net(1, 2, 2)

    def counted(p):
        calls.append(p.shape[0])
        return net(p)

    SlidingWindowInferer((8, 8), sw_batch_size=5, overlap=0.5)(x, counted)
    assert calls == [5, 5, 5, 5, 5, 3]


def test_inference_mode_and_progress(paths):
    pytest.importorskip("tqdm")
    model = torch.nn.Conv2d(2, 3, 3, padding=1)
    x = torch.rand(1, 2, 25, 19)
    kw = {"roi_size": (8, 8), "overlap": 0.5, "mode": "gaussian", "sw_batch_size": 3}
    with torch.inference_mode():
        ours = SlidingWindowInferer(**kw, progress=True)(x, model)
        expected = MonaiSWI(**kw)(x, model)
    assert paths == {"fast": 1, "monai": 1}
    assert_monai_close(ours, expected)


# ----------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"roi_size": "abc"}, TypeError, "roi_size"),
    ({"roi_size": (8, 2.5)}, TypeError, "roi_size"),
    ({"roi_size": 8, "sw_batch_size": 0}, ValueError, "sw_batch_size"),
    ({"roi_size": 8, "sw_batch_size": 1.5}, ValueError, "sw_batch_size"),
    ({"roi_size": 8, "overlap": 1.0}, ValueError, "overlap"),
    ({"roi_size": 8, "overlap": -0.1}, ValueError, "overlap"),
    ({"roi_size": 8, "overlap": "half"}, TypeError, "overlap"),
    ({"roi_size": 8, "mode": "linear"}, ValueError, "mode"),
    ({"roi_size": 8, "mode": "gaussian", "sigma_scale": 0.0}, ValueError, "sigma_scale"),
    ({"roi_size": 8, "padding_mode": "wrap"}, ValueError, "padding_mode"),
    ({"roi_size": 8, "cval": "zero"}, TypeError, "cval"),
    ({"roi_size": 8, "buffer_dim": 0.5}, TypeError, "buffer_dim"),
    ({"roi_size": 8, "cpu_thresh": "big"}, TypeError, "cpu_thresh"),
])
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SlidingWindowInferer(**kwargs)


def test_bad_call_arguments():
    x = torch.rand(1, 1, 20, 18)
    with pytest.raises(TypeError, match="network"):
        SlidingWindowInferer(8)(x, "not a network")
    with pytest.raises(ValueError, match="roi_size"):   # MONAI's message: 3-D roi for a 2-D image
        SlidingWindowInferer((8, 8, 8))(x, conv_net(1, 2, 2))


def test_docstring_examples():
    import doctest

    result = doctest.testmod(inferers_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


def test_registered_names():
    assert fm.SlidingWindowInferer is SlidingWindowInferer
    assert issubclass(SlidingWindowInferer, MonaiSWI)
    assert {"SlidingWindowInferer", "AvgMerger", "GaussianMerger"} <= set(fm.__all__)
    assert fm.AvgMerger is AvgMerger and fm.GaussianMerger is GaussianMerger
    assert issubclass(AvgMerger, MonaiAvgMerger) and issubclass(GaussianMerger, monai.inferers.Merger)


# ----------------------------------------------------------------------------- mergers under PatchInferer
def run_patch_inferer(x, net, merger_cls, patch, overlap, batch_size=2, **merger_kwargs):
    splitter = SlidingWindowSplitter(patch, overlap=overlap)
    return PatchInferer(splitter, merger_cls, batch_size=batch_size, **merger_kwargs)(x, net)


MERGER_CASES = [
    ((1, 1, 37, 41), (16, 16), 0.25, 3),
    ((2, 2, 20, 33), (8, 12), 0.5, 1),
    ((1, 1, 10, 7), (16, 16), 0.0, 2),             # patch larger than the image (padded, then cropped)
    ((1, 2, 30, 23, 20), (16, 16, 16), 0.5, 4),
    ((2, 1, 13, 29, 17), (8, 12, 9), 0.3, 3),
    ((1, 1, 57), (20,), 0.6, 2),
]


@pytest.mark.parametrize(("shape", "patch", "overlap", "k"), MERGER_CASES)
def test_avg_merger_matches_monai_and_argmax(shape, patch, overlap, k):
    x = torch.rand(shape)
    net = conv_net(shape[1], k, len(patch))
    expected = run_patch_inferer(x, net, MonaiAvgMerger, patch, overlap)
    ours = run_patch_inferer(x, net, AvgMerger, patch, overlap)
    assert_monai_close(ours, expected, rtol=0)
    labels = run_patch_inferer(x, net, AvgMerger, patch, overlap, argmax=True)
    assert labels.dtype == torch.uint8 and labels.shape == (shape[0], 1) + shape[2:]
    torch.testing.assert_close(labels.long(), expected.argmax(1, keepdim=True), rtol=0, atol=0)
    # the constant GaussianMerger is the same average
    const = run_patch_inferer(x, net, GaussianMerger, patch, overlap, mode="constant")
    assert_monai_close(const, expected, rtol=0)


def reference_gaussian_merge(merged_shape, cropped_shape, patches, sigma_scale):
    """Weighted average with MONAI's compute_importance_map, one patch at a time (float64)."""
    values = torch.zeros(merged_shape, dtype=torch.float64)
    weights = torch.zeros((1, 1) + tuple(merged_shape[2:]), dtype=torch.float64)
    for p, loc in patches:
        g = compute_importance_map(tuple(p.shape[2:]), mode="gaussian", sigma_scale=sigma_scale).double()
        sl = (slice(None), slice(None)) + tuple(slice(a, a + s) for a, s in zip(loc, p.shape[2:]))
        values[sl] += p.double() * g
        weights[sl] += g
    return (values / weights)[tuple(slice(0, c) for c in cropped_shape)]


@pytest.mark.parametrize(("shape", "patch", "overlap", "k"), MERGER_CASES)
@pytest.mark.parametrize("sigma_scale", [0.125, 0.3])
def test_gaussian_merger(shape, patch, overlap, k, sigma_scale):
    x = torch.rand(shape)
    net = conv_net(shape[1], k, len(patch))
    ours = run_patch_inferer(x, net, GaussianMerger, patch, overlap, sigma_scale=sigma_scale)
    splitter = SlidingWindowSplitter(patch, overlap=overlap)
    patches = [(net(p), loc) for p, loc in splitter(x)]
    merged = (shape[0], k) + splitter.get_padded_shape(x)
    expected = reference_gaussian_merge(merged, (shape[0], k) + shape[2:], patches, sigma_scale)
    assert ours.dtype == torch.float32 and ours.shape == expected.shape
    torch.testing.assert_close(ours.double(), expected, rtol=1e-6, atol=1e-7)
    labels = run_patch_inferer(x, net, GaussianMerger, patch, overlap, sigma_scale=sigma_scale, argmax=True)
    torch.testing.assert_close(labels.long(), ours.argmax(1, keepdim=True), rtol=0, atol=0)


def test_argmax_keeps_only_a_slab():
    merger = GaussianMerger((1, 3, 40, 12, 10), argmax=True)
    rng = torch.Generator().manual_seed(1)
    full = GaussianMerger((1, 3, 40, 12, 10))
    for z in (0, 6, 12, 18, 24, 30):
        for y in (0, 4):
            p = torch.rand((1, 3, 10, 8, 10), generator=rng)
            merger.aggregate(p, (z, y, 0))
            full.aggregate(p, (z, y, 0))
            assert merger.get_values().shape[2] == 10   # one patch deep, never the 40 planes
    labels = merger.finalize()
    assert merger.get_counts() is None and merger.is_finalized
    torch.testing.assert_close(labels.long(), full.finalize().argmax(1, keepdim=True), rtol=0, atol=0)
    assert merger.finalize() is labels


def test_uncovered_voxels_and_ties():
    ours, theirs = AvgMerger((1, 2, 6, 6)), MonaiAvgMerger((1, 2, 6, 6))
    labels = AvgMerger((1, 2, 6, 6), argmax=True)
    patch = torch.tensor([0.5, 0.5]).reshape(1, 2, 1, 1).expand(1, 2, 3, 3)   # a tie: channel 0
    for m in (ours, theirs, labels):
        m.aggregate(patch, (0, 0))
        m.aggregate(patch.flip(1) * torch.tensor([1.0, 2.0]).reshape(1, 2, 1, 1), (3, 3))
    expected = theirs.finalize()
    torch.testing.assert_close(ours.finalize(), expected, rtol=0, atol=0, equal_nan=True)
    assert bool(torch.isnan(expected).any())
    torch.testing.assert_close(labels.finalize().long(), expected.argmax(1, keepdim=True), rtol=0, atol=0)


def test_merger_input_unchanged_and_devices():
    p = torch.rand(1, 2, 4, 4)
    before = p.clone()
    for m in (GaussianMerger((1, 2, 8, 8)), GaussianMerger((1, 2, 8, 8), argmax=True), AvgMerger((1, 2, 8, 8))):
        m.aggregate(p, (2, 3))
        out = m.finalize()
        assert out.device.type == "cpu"
    torch.testing.assert_close(p, before, rtol=0, atol=0)


def test_merger_bad_arguments():
    with pytest.raises(ValueError, match="merged_shape"):
        GaussianMerger(None)
    with pytest.raises(ValueError, match="merged_shape"):
        GaussianMerger((1, 2))
    with pytest.raises(ValueError, match="cropped_shape"):
        GaussianMerger((1, 2, 8, 8), cropped_shape=(1, 2, 9, 8))
    with pytest.raises(ValueError, match="mode"):
        GaussianMerger((1, 2, 8, 8), mode="median")
    with pytest.raises(ValueError, match="sigma_scale"):
        GaussianMerger((1, 2, 8, 8), sigma_scale=-1.0)
    with pytest.raises(ValueError, match="sigma_scale"):
        GaussianMerger((1, 2, 8, 8), sigma_scale=(0.1, 0.1, 0.1))
    with pytest.raises(TypeError, match="value_dtype"):
        GaussianMerger((1, 2, 8, 8), value_dtype="float32")
    with pytest.raises(ValueError, match="value_dtype"):
        GaussianMerger((1, 2, 8, 8), value_dtype=torch.int32)
    m = GaussianMerger((1, 2, 8, 8), argmax=True)
    with pytest.raises(ValueError, match="location"):
        m.aggregate(torch.rand(1, 2, 4, 4), (6, 0))
    with pytest.raises(ValueError, match="location"):
        m.aggregate(torch.rand(1, 2, 4, 4), (0,))
    with pytest.raises(TypeError, match="values"):
        m.aggregate(np.zeros((1, 2, 4, 4)), (0, 0))
    with pytest.raises(ValueError, match="values"):
        m.aggregate(torch.zeros((1, 2, 4, 4), dtype=torch.int64), (0, 0))
    m.aggregate(torch.rand(1, 2, 4, 4), (4, 0))
    with pytest.raises(ValueError, match="nondecreasing"):
        m.aggregate(torch.rand(1, 2, 4, 4), (0, 0))
    m.finalize()
    with pytest.raises(ValueError, match="finalized"):
        m.aggregate(torch.rand(1, 2, 4, 4), (4, 4))
    with pytest.raises(TypeError, match="count_dtype"):
        AvgMerger((1, 2, 8, 8), count_dtype=None, argmax=True)
