"""Sliding-window inference: plan math vs nnU-Net and MONAI, kernels vs the reference loop and MONAI."""

from __future__ import annotations

import medseg_fast
import numpy as np
import pytest
import torch
from conftest import load_volume, to_device, to_numpy
from medseg_fast import SlidingWindow, sliding_window_inference
from medseg_fast import sliding_window as sw_module
from medseg_fast.reference import sliding_window as ref
from monai.data.utils import compute_importance_map, dense_patch_slices
from monai.inferers import sliding_window_inference as monai_swi
from monai.inferers.utils import _get_scan_interval
from scipy.ndimage import gaussian_filter


# ----------------------------------------------------------------------------- nnU-Net, as documented
def nnunet_compute_steps(image_size, tile_size, tile_step_size):
    """nnU-Net v2 ``compute_steps_for_sliding_window`` (nnunetv2/inference/sliding_window_prediction.py)."""
    target = [i * tile_step_size for i in tile_size]
    num_steps = [int(np.ceil((i - k) / j)) + 1 for i, j, k in zip(image_size, target, tile_size)]
    steps = []
    for dim in range(len(tile_size)):
        max_step = image_size[dim] - tile_size[dim]
        actual = max_step / (num_steps[dim] - 1) if num_steps[dim] > 1 else 99999999999
        steps.append([int(np.round(actual * i)) for i in range(num_steps[dim])])
    return steps


def nnunet_compute_gaussian(tile_size, sigma_scale=1.0 / 8, value_scaling_factor=10):
    """nnU-Net v2 ``compute_gaussian`` (float64 instead of its float16 device copy)."""
    tmp = np.zeros(tile_size)
    tmp[tuple(i // 2 for i in tile_size)] = 1
    g = gaussian_filter(tmp, [i * sigma_scale for i in tile_size], 0, mode="constant", cval=0)
    g = g / (g.max() / value_scaling_factor)
    g[g == 0] = g[g != 0].min()
    return g


def run_on_cpu(predict, device):
    """`predict` (a CPU network) for inputs on `device`: the same weights and arithmetic on every
    device, so a device's blending is compared with the CPU's on identical patch predictions."""
    if device == "cpu":
        return predict
    return lambda p: predict(p.cpu()).to(p.device)


def conv_predictor(in_channels, out_channels, ndim, seed=0):
    """A small deterministic 'network': conv + nonlinearity, so windows are not pointwise."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn((out_channels, in_channels) + (3,) * ndim, generator=gen) * 0.3
    conv = torch.nn.functional.conv3d if ndim == 3 else torch.nn.functional.conv2d

    def predict(p):
        return torch.tanh(conv(p.float(), weight, padding=1)).softmax(1)

    return predict


# ----------------------------------------------------------------------------- plan math
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.6, 0.9])
def test_nnunet_steps_match_nnunet(overlap, rng):
    for _ in range(40):
        patch = int(rng.integers(1, 40))
        size = patch + int(rng.integers(0, 120))
        plan = SlidingWindow((size,), (patch,), overlap=overlap, positions="nnunet")
        assert plan.axis_origins[0].tolist() == nnunet_compute_steps((size,), (patch,), 1 - overlap)[0]


@pytest.mark.parametrize(("patch", "sigma_scale"), [((16, 16, 16), 0.125), ((7, 12, 5), 0.125), ((20, 9), 0.05),
                                                   ((128,), 0.125), ((1, 6), 0.125)])
def test_nnunet_gaussian_matches_up_to_scaling(patch, sigma_scale):
    plan = SlidingWindow(patch, patch, sigma_scale=sigma_scale, positions="nnunet")
    expected = nnunet_compute_gaussian(patch, sigma_scale)
    np.testing.assert_allclose(plan.importance_map, expected / expected.max(), rtol=2e-6, atol=0)
    assert plan.importance_map.min() > 0


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75])
def test_monai_positions_match_dense_patch_slices(overlap, rng):
    for _ in range(20):
        ndim = int(rng.integers(1, 4))
        patch = tuple(int(v) for v in rng.integers(1, 20, ndim))
        image = tuple(p + int(rng.integers(0, 50)) for p in patch)
        plan = SlidingWindow(image, patch, overlap=overlap, positions="monai")
        interval = _get_scan_interval(image, patch, ndim, (overlap,) * ndim)
        expected = [[s.start for s in sl] for sl in dense_patch_slices(image, patch, interval)]
        assert plan.origins.tolist() == expected


@pytest.mark.parametrize("patch", [(16, 16, 16), (7, 12, 5), (20, 9), (1, 6)])
@pytest.mark.parametrize("sigma_scale", [0.125, 0.3])
def test_monai_gaussian_matches_compute_importance_map(patch, sigma_scale):
    plan = SlidingWindow(patch, patch, sigma_scale=sigma_scale, positions="monai")
    expected = compute_importance_map(patch, mode="gaussian", sigma_scale=sigma_scale).numpy()
    np.testing.assert_allclose(plan.importance_map, expected, rtol=1e-6, atol=0)


def test_padding_when_image_smaller_than_patch():
    plan = SlidingWindow((3, 10), (6, 4), overlap=0.5)
    assert plan.padding == ((1, 2), (0, 0))
    assert plan.axis_origins[0].tolist() == [-1]
    x = np.arange(30, dtype=np.int16).reshape(1, 3, 10)
    p = plan.gather(x, 0, 1)
    expected = np.zeros((6, 4), np.int16)
    expected[1:4] = x[0, :, 0:4]
    np.testing.assert_array_equal(p[0, 0], expected)


# ----------------------------------------------------------------------------- hand-computed fixtures
def counting_predictor():
    """Window k of the run (batch_size=1) predicts the constant k."""
    state = {"k": 0}

    def predict(p):
        out = torch.full_like(p[:, :1], float(state["k"]))
        state["k"] += 1
        return out

    return predict


# Windows of a 4x4 image, patch 2x2, overlap 0.5: origins {0, 1, 2}^2 for both positions, window
# k = 3 i + j. With equal weights a voxel gets the mean of k over the windows covering it.
FIXTURE_EQUAL_WEIGHTS = np.array([[0.0, 0.5, 1.5, 2.0],
                                  [1.5, 2.0, 3.0, 3.5],
                                  [4.5, 5.0, 6.0, 6.5],
                                  [6.0, 6.5, 7.5, 8.0]], dtype=np.float32)


@pytest.mark.parametrize(("positions", "mode"), [("nnunet", "constant"), ("monai", "constant"), ("monai", "gaussian")])
def test_4x4_fixture_equal_weights(positions, mode):
    # MONAI's Gaussian on a 2-voxel axis is symmetric about the centre: equal weights.
    x = torch.zeros(1, 1, 4, 4)
    out = sliding_window_inference(x, counting_predictor(), (2, 2), overlap=0.5, batch_size=1, mode=mode,
                                   positions=positions)
    np.testing.assert_allclose(out[0, 0].numpy(), FIXTURE_EQUAL_WEIGHTS, rtol=1e-6)


def test_4x4_fixture_nnunet_gaussian():
    # nnU-Net centres the 2-voxel Gaussian at index 1: weights (e, 1) per axis with e = exp(-8)
    # (offset 1, sigma 0.25). Voxel (1, 1) is seen by windows 0, 1, 3, 4 at local offsets
    # (1,1), (1,0), (0,1), (0,0): (0*1 + 1*e + 3*e + 4*e^2) / (1 + 2e + e^2) = 4e / (1 + e).
    e = np.exp(-8.0)
    out = sliding_window_inference(torch.zeros(1, 1, 4, 4), counting_predictor(), (2, 2), overlap=0.5, batch_size=1,
                                   positions="nnunet")[0, 0].numpy()
    assert out[1, 1] == pytest.approx(4 * e / (1 + e), rel=1e-5)
    assert out[0, 0] == 0.0
    assert out[3, 3] == 8.0
    # voxel (0, 1): windows 0 and 1 at local columns 1 and 0 -> (0*1 + 1*e) / (1 + e)
    assert out[0, 1] == pytest.approx(e / (1 + e), rel=1e-5)


# ----------------------------------------------------------------------------- parity with MONAI
MONAI_CASES = [
    ((1, 1, 37, 41), (16, 16), 0.25, "gaussian", 4),
    ((2, 2, 20, 33), (8, 12), 0.5, "constant", 3),
    ((1, 1, 10, 7), (16, 16), 0.5, "gaussian", 2),
    ((1, 2, 30, 23, 20), (16, 16, 16), 0.6, "gaussian", 4),
    ((2, 1, 13, 29, 17), (8, 12, 9), 0.5, "constant", 5),
    ((1, 1, 5, 40, 3), (8, 16, 8), 0.3, "gaussian", 4),
    ((1, 1, 31, 1, 17), (7, 1, 5), 0.0, "gaussian", 7),
]


@pytest.mark.parametrize(("shape", "roi", "overlap", "mode", "bs"), MONAI_CASES)
def test_matches_monai(shape, roi, overlap, mode, bs, device):
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(shape, generator=gen)
    predict = conv_predictor(shape[1], 3, len(roi))
    expected = monai_swi(x, roi, bs, predict, overlap=overlap, mode=mode)
    kw = {"overlap": overlap, "mode": mode, "batch_size": bs, "positions": "monai"}
    ours = sliding_window_inference(x.to(device), run_on_cpu(predict, device), roi, **kw)
    assert ours.device == x.to(device).device
    if device != "cpu":   # bit for bit the CPU blend
        cpu = sliding_window_inference(x, predict, roi, **kw)
        torch.testing.assert_close(ours.cpu(), cpu, rtol=0, atol=0)
    ours = ours.cpu()
    assert ours.dtype == torch.float32
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_reference_matches_monai():
    x = torch.rand(1, 1, 21, 30)
    predict = conv_predictor(1, 2, 2)
    expected = monai_swi(x, (16, 8), 4, predict, overlap=0.4, mode="gaussian")
    got = ref.sliding_window_inference(x, predict, (16, 8), overlap=0.4, positions="monai")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- parity with the reference
@pytest.mark.parametrize(("shape", "patch", "overlap", "mode", "mirror"), [
    ((1, 1, 37, 41), (16, 16), 0.5, "gaussian", None),
    ((1, 2, 11, 19, 23), (8, 8, 8), 0.5, "gaussian", (0, 2)),
    ((1, 1, 9, 30, 7), (12, 8, 8), 0.25, "constant", (1,)),
    ((1, 3, 40, 2), (17, 5), 0.7, "gaussian", (0, 1)),
])
def test_nnunet_matches_reference(shape, patch, overlap, mode, mirror, device):
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(shape, generator=gen)
    predict = conv_predictor(shape[1], 2, len(patch))
    expected = ref.sliding_window_inference(x, predict, patch, overlap=overlap, mode=mode, positions="nnunet",
                                            mirror_axes=mirror)
    kw = {"overlap": overlap, "mode": mode, "mirror_axes": mirror, "batch_size": 3}
    ours = sliding_window_inference(x.to(device), run_on_cpu(predict, device), patch, **kw)
    assert ours.device == x.to(device).device
    if device != "cpu":
        cpu = sliding_window_inference(x, predict, patch, **kw)
        torch.testing.assert_close(ours.cpu(), cpu, rtol=0, atol=0)   # bit for bit the CPU blend
        # a CPU image run on the device (patches there), results back on the CPU
        seen = []

        def predict_seen(p):
            seen.append(p.device.type)
            return predict(p.cpu())

        mixed = sliding_window_inference(x, predict_seen, patch, device=device, output_device="cpu", **kw)
        assert set(seen) == {torch.device(device).type}
        torch.testing.assert_close(mixed, cpu, rtol=0, atol=0)
    torch.testing.assert_close(ours.cpu(), expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- argmax
@pytest.mark.parametrize(("shape", "patch", "classes", "bs"), [
    ((1, 1, 37, 41), (16, 16), 3, 4),
    ((2, 1, 13, 19, 11), (8, 8, 8), 5, 5),
    ((1, 1, 6, 40, 9), (8, 16, 4), 2, 7),
    ((1, 1, 20, 20), (8, 8), 300, 2),
])
@pytest.mark.parametrize("positions", ["nnunet", "monai"])
def test_argmax_equals_argmax_of_probabilities(shape, patch, classes, bs, positions, device):
    gen = torch.Generator().manual_seed(classes)
    x = torch.rand(shape, generator=gen).to(device)
    predict = run_on_cpu(conv_predictor(shape[1], classes, len(patch)), device)
    probs = sliding_window_inference(x, predict, patch, batch_size=bs, positions=positions)
    labels = sliding_window_inference(x, predict, patch, batch_size=bs, positions=positions, argmax=True)
    assert labels.dtype == (torch.uint8 if classes <= 256 else torch.int16)
    assert labels.shape == (shape[0],) + shape[2:]
    torch.testing.assert_close(labels.long(), probs.argmax(1), rtol=0, atol=0)


def test_finalize_argmax_ties_and_nan():
    plan = SlidingWindow((4,), (4,), mode="constant")
    acc = np.array([[1.0, 2.0, np.nan, 0.0], [1.0, 3.0, 5.0, np.nan], [0.5, 3.0, 1.0, 9.0]], np.float32)
    labels = plan.finalize(acc.copy(), argmax=True)
    np.testing.assert_array_equal(labels, np.argmax(acc, axis=0))


# ----------------------------------------------------------------------------- real volume
def test_mni_volume_matches_monai():
    volume, _ = load_volume("mni152_2009a_t1_1mm.nii.gz")
    assert volume.shape == (189, 233, 197)
    x = torch.from_numpy(volume.astype(np.float32) / float(volume.max()))[None, None]

    def predict(p):
        return torch.cat([p, 1 - p, p * p], dim=1)

    expected = monai_swi(x, (128, 128, 128), 4, predict, overlap=0.25, mode="gaussian")
    ours = sliding_window_inference(x, predict, (128, 128, 128), overlap=0.25, positions="monai")
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    labels = sliding_window_inference(x, predict, (128, 128, 128), overlap=0.25, positions="monai", argmax=True)
    torch.testing.assert_close(labels.long(), expected.argmax(1), rtol=0, atol=0)


# ----------------------------------------------------------------------------- plan kernels
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float16, np.float32, np.float64, np.int64, np.bool_])
def test_gather_matches_slicing(dtype, rng, device):
    x = (rng.random((2, 3, 11, 7, 13)) * 100).astype(dtype)
    plan = SlidingWindow((11, 7, 13), (4, 9, 5), overlap=0.3)
    before = x.copy()
    xd = to_device(x, device)
    patches = to_numpy(plan.gather(xd, 3, len(plan) * 2 - 5))
    assert patches.dtype == x.dtype
    pad = [(0, 0), (0, 0)] + [(max(-int(o.min()), 0), 9) for o in plan.axis_origins]
    xp = np.pad(x, pad)
    for i in range(patches.shape[0]):
        b, w = divmod(3 + i, len(plan))
        o = plan.origins[w] + [p[0] for p in pad[2:]]
        np.testing.assert_array_equal(patches[i], xp[b, :, o[0]:o[0] + 4, o[1]:o[1] + 9, o[2]:o[2] + 5])
    np.testing.assert_array_equal(to_numpy(xd), before)
    as_float = to_numpy(plan.gather(xd, 3, 2, dtype="float32"))
    np.testing.assert_array_equal(as_float, patches[:2].astype(np.float32))


def test_gather_strided_and_transposed_views(rng):
    base = rng.random((2, 40, 30, 3), dtype=np.float32)
    x = base.transpose(0, 3, 2, 1)[:, :, ::2, 1:-3]      # (2, 3, 15, 36), odd strides
    xt = torch.from_numpy(base).permute(0, 3, 2, 1)[:, :, ::2, 1:-3]
    plan = SlidingWindow((15, 36), (8, 10), overlap=0.5)
    a = plan.gather(x)
    b = plan.gather(np.ascontiguousarray(x))
    c = plan.gather(xt)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c.numpy(), b)
    predict = conv_predictor(3, 2, 2)
    out1 = sliding_window_inference(xt, predict, (8, 10))
    out2 = sliding_window_inference(xt.contiguous(), predict, (8, 10))
    torch.testing.assert_close(out1, out2, rtol=0, atol=0)


def test_torch_bfloat16_gather():
    x = torch.rand(1, 2, 9, 10).to(torch.bfloat16)
    plan = SlidingWindow((9, 10), (4, 4))
    p = plan.gather(x)
    assert p.dtype == torch.bfloat16
    torch.testing.assert_close(p[0], x[0, :, :4, :4], rtol=0, atol=0)
    torch.testing.assert_close(plan.gather(x, dtype="float32")[0], x[0, :, :4, :4].float(), rtol=0, atol=0)


@pytest.mark.parametrize("patch_dtype", [np.float32, np.float16, np.float64])
def test_weights_map_and_skipped_windows(patch_dtype, rng, device):
    plan = SlidingWindow((17, 23), (8, 8), overlap=0.5)
    preds_host = rng.random((len(plan), 2, 8, 8)).astype(patch_dtype)

    def accumulate(dev):
        """Accumulator and weights of all windows on `dev` (numpy on the CPU, torch on a GPU)."""
        like = None if dev == "cpu" else torch.zeros(1, device=dev)
        acc = plan.new_accumulator(2, like=like)
        weights = to_device(np.zeros((17, 23), np.float32), dev)
        preds = to_device(preds_host, dev)
        for start in range(0, len(plan), 3):
            plan.scatter_add(acc, preds[start:start + 3], start, weights=weights)
        return acc, weights, preds

    def copy(a):
        return a.copy() if isinstance(a, np.ndarray) else a.clone()

    acc, weights, preds = accumulate(device)
    np.testing.assert_array_equal(to_numpy(weights), plan.weight_map())
    # the grid's weight sum (recomputed row by row) is bit-identical to the stored map
    a = to_numpy(plan.finalize(copy(acc)))
    b = to_numpy(plan.finalize(copy(acc), weights=weights))
    np.testing.assert_array_equal(a, b)
    if device != "cpu":   # bit for bit the CPU blend
        acc_c, _, _ = accumulate("cpu")
        np.testing.assert_array_equal(to_numpy(acc), acc_c)
        np.testing.assert_array_equal(a, plan.finalize(acc_c))
    # skipping windows: only the weights map knows; uncovered voxels become 0
    acc2 = plan.new_accumulator(2, like=None if device == "cpu" else weights)
    w2 = copy(weights) * 0
    plan.scatter_add(acc2, preds[:1], 0, weights=w2)
    out = to_numpy(plan.finalize(acc2, weights=w2))
    preds = preds_host
    np.testing.assert_allclose(out[:, :8, :8], preds[0].astype(np.float32), rtol=1e-6)
    assert np.all(out[:, 8:, :] == 0)
    assert np.all(out[:, :, 8:] == 0)


@pytest.mark.parametrize(("image", "patch", "mode", "positions"), [
    ((37, 29, 41), (16, 12, 20), "gaussian", "monai"),
    ((9, 30, 7), (12, 8, 10), "gaussian", "monai"),     # image smaller than the patch on two axes
    ((1, 23, 17), (1, 8, 8), "gaussian", "monai"),     # 1-voxel axis
    ((31, 26), (13, 11), "gaussian", "monai"),
    ((45,), (13,), "gaussian", "monai"),
    ((19, 23, 11), (8, 8, 8), "constant", "nnunet"),
    ((19, 23, 11), (8, 8, 8), "constant", "monai"),
])
def test_separable_importance_rows_equal_full_map(image, patch, mode, positions, rng):
    """MONAI's Gaussian and the constant map run on (scale, row, floor) factors on the CPU; the
    factors rebuild the map bit for bit and every kernel path gives the bits of the full-map path."""
    plan = SlidingWindow(image, patch, overlap=0.5, mode=mode, positions=positions, sigma_scale=0.2)
    assert plan._factors is not None
    scale, row, floor = plan._factors
    rebuilt = np.maximum((scale[..., None] * row).astype(np.float32), np.float32(floor))
    np.testing.assert_array_equal(rebuilt.reshape(plan.importance_map.shape), plan.importance_map)
    full = SlidingWindow(image, patch, overlap=0.5, mode=mode, positions=positions, sigma_scale=0.2)
    full._factors = None
    preds = rng.random((len(plan), 3) + tuple(patch)).astype(np.float32)
    results = []
    for p in (plan, full):
        acc = p.new_accumulator(3)
        weights = np.zeros(image, np.float32)
        p.scatter_add(acc, preds, 0, weights=weights)
        in_order = np.empty_like(acc)
        for start in range(0, len(p), 2):   # the streaming path: first window assigns, last divides
            p.scatter_add(in_order, preds[start:start + 2], start, _in_order=(True, True))
        results.append((p.finalize(acc.copy()), p.finalize(acc.copy(), argmax=True), weights, in_order))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(results[0][3], results[0][0], rtol=0, atol=0)


def test_nnunet_gaussian_reads_the_full_map():
    assert SlidingWindow((20, 20, 20), (8, 8, 8), positions="nnunet")._factors is None


def test_slab_offset_accumulation_equals_full(rng):
    plan = SlidingWindow((20, 11), (8, 6), overlap=0.5)
    preds = rng.random((len(plan), 1, 8, 6)).astype(np.float32)
    full = plan.new_accumulator(1)
    plan.scatter_add(full, preds, 0)
    expected = plan.finalize(full)
    slab = np.zeros((1, 5, 11), np.float32)
    plan.scatter_add(slab, preds, 0, offset=(7, 0))
    as_float64 = plan.finalize(slab, offset=(7, 0), out_dtype="float64")
    np.testing.assert_array_equal(as_float64, expected[:, 7:12].astype(np.float64))
    np.testing.assert_array_equal(plan.finalize(slab, offset=(7, 0)), expected[:, 7:12])


@pytest.mark.parametrize("positions", ["nnunet", "monai"])   # full importance map / separable rows
def test_thread_count_independence(positions, rng):
    x = torch.from_numpy(rng.random((1, 1, 33, 40, 29), dtype=np.float32))
    predict = conv_predictor(1, 3, 3)
    previous = medseg_fast.get_num_threads()
    try:
        medseg_fast.set_num_threads(1)
        a = sliding_window_inference(x, predict, (16, 16, 16), positions=positions)
        la = sliding_window_inference(x, predict, (16, 16, 16), positions=positions, argmax=True)
        medseg_fast.set_num_threads(2)
        b = sliding_window_inference(x, predict, (16, 16, 16), positions=positions)
        lb = sliding_window_inference(x, predict, (16, 16, 16), positions=positions, argmax=True)
    finally:
        medseg_fast.set_num_threads(previous)
    assert torch.equal(a, b)
    assert torch.equal(la, lb)


# ----------------------------------------------------------------------------- inference options
def test_numpy_in_numpy_out_and_input_unchanged(rng):
    x = rng.random((1, 2, 19, 21), dtype=np.float32)
    before = x.copy()

    def predict(p):
        assert isinstance(p, np.ndarray)
        return np.concatenate([p, -p], axis=1)

    out = sliding_window_inference(x, predict, (8, 8))
    assert isinstance(out, np.ndarray)
    assert out.shape == (1, 4, 19, 21)
    np.testing.assert_allclose(out[:, :2], x, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(x, before)


def test_device_gives_torch_patches_and_tuple_outputs(rng):
    x = rng.random((1, 1, 19, 21), dtype=np.float32)

    def predict(p):
        assert isinstance(p, torch.Tensor)
        return (p * 2, p[:, :, ::2, ::2])   # deep supervision: the first output counts

    out = sliding_window_inference(x, predict, (8, 8), device="cpu", output_device="cpu")
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, 2 * x, rtol=1e-6, atol=1e-6)


def test_oom_on_results_device_falls_back_to_cpu(monkeypatch):
    real_run = sw_module._run
    calls = []

    def fake_run(*args, results_device, **kwargs):
        calls.append(results_device)
        if results_device is not None and results_device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_run(*args, results_device=results_device, **kwargs)

    monkeypatch.setattr(sw_module, "_run", fake_run)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    x = torch.rand(1, 1, 12, 12)
    with pytest.warns(ResourceWarning, match="out of GPU memory"):
        out = sliding_window_inference(x, lambda p: p, (8, 8), output_device="cuda:0")
    assert [c.type for c in calls] == ["cuda", "cpu"]
    assert out.device.type == "cpu"
    torch.testing.assert_close(out, x, rtol=1e-6, atol=1e-6)


def test_progress_bar(capsys):
    sliding_window_inference(torch.rand(1, 1, 12, 12), lambda p: p, (8, 8), progress=True)
    assert "sliding window" in capsys.readouterr().err


def test_empty_and_single_voxel_inputs():
    out = sliding_window_inference(np.ones((1, 1, 1, 1, 1), np.float32), lambda p: p * 3, (4, 4, 4))
    np.testing.assert_allclose(out, 3.0)
    plan = SlidingWindow((5, 5), (2, 2))
    assert plan.gather(np.zeros((0, 1, 5, 5), np.float32)).shape == (0, 1, 2, 2)
    assert plan.gather(np.zeros((1, 0, 5, 5), np.float32)).shape == (len(plan), 0, 2, 2)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_messages():
    x = torch.rand(1, 1, 10, 10)
    with pytest.raises(ValueError, match="patch_size must have 2 values"):
        sliding_window_inference(x, lambda p: p, (4, 4, 4))
    with pytest.raises(ValueError, match="patch_size must be positive"):
        sliding_window_inference(x, lambda p: p, (4, 0))
    with pytest.raises(ValueError, match=r"overlap must lie in \[0, 1\)"):
        sliding_window_inference(x, lambda p: p, (4, 4), overlap=1.0)
    with pytest.raises(ValueError, match=r"overlap must lie in \[0, 1\)"):
        SlidingWindow((10,), (4,), overlap=-0.1)
    with pytest.raises(ValueError, match=r"predictor output must have shape \(4, K, \*\(4, 4\)\).*got shape=\(4, 1, 3, 3\)"):
        sliding_window_inference(x, lambda p: p[:, :, :3, :3], (4, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, \*spatial\)"):
        sliding_window_inference(torch.rand(10, 10), lambda p: p, (4, 4))
    with pytest.raises(ValueError, match="mode must be one of"):
        SlidingWindow((10,), (4,), mode="hann")
    with pytest.raises(ValueError, match="positions must be one of"):
        SlidingWindow((10,), (4,), positions="torchio")
    with pytest.raises(ValueError, match="mirror_axes must be distinct spatial axes"):
        sliding_window_inference(x, lambda p: p, (4, 4), mirror_axes=(2,))
    plan = SlidingWindow((10, 10), (4, 4))
    with pytest.raises(ValueError, match="accumulator must be float32"):
        plan.scatter_add(np.zeros((1, 10, 10), np.float64), np.zeros((1, 1, 4, 4), np.float32), 0)
    with pytest.raises(ValueError, match=r"patches must have shape \(n, 1, \*\(4, 4\)\)"):
        plan.scatter_add(plan.new_accumulator(1), np.zeros((1, 2, 4, 4), np.float32), 0)
    with pytest.raises(ValueError, match="start must be an integer"):
        plan.gather(np.zeros((1, 10, 10), np.float32), len(plan) + 1)
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, \*\(10, 10\)\)"):
        plan.gather(np.zeros((1, 9, 10), np.float32))


def test_one_dimensional_inference_and_argmax(rng):
    x = torch.from_numpy(rng.random((2, 1, 50), dtype=np.float32))

    def predict(p):
        return torch.cat([p, 1 - p, p * p], 1)

    expected = ref.sliding_window_inference(x, predict, (16,), overlap=0.5)
    probs = sliding_window_inference(x, predict, (16,), batch_size=3)
    torch.testing.assert_close(probs, expected, rtol=1e-5, atol=1e-6)
    labels = sliding_window_inference(x, predict, (16,), batch_size=3, argmax=True)
    torch.testing.assert_close(labels.long(), probs.argmax(1), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int32])
def test_prediction_dtypes_with_mirroring(dtype):
    x = torch.rand(1, 1, 10, 12) * 4

    def predict(p):
        return p.to(dtype)

    out = sliding_window_inference(x, predict, (8, 8), mirror_axes=(1,), batch_size=3)
    assert out.dtype == torch.float32
    expected = x.to(dtype).float()
    torch.testing.assert_close(out, expected, rtol=1e-2, atol=1e-2)
