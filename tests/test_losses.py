"""Fused Dice + focal loss: parity with MONAI and the reference, gradients, dtypes, bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
monai = pytest.importorskip("monai")

import medseg_fast  # noqa: E402
from conftest import load_volume  # noqa: E402
from loss_helpers import assert_close as _close  # noqa: E402
from loss_helpers import grad_of as _grad  # noqa: E402
from medseg_fast.losses import DiceFocalLoss, DiceLoss, FocalLoss  # noqa: E402
from medseg_fast.reference import losses as ref  # noqa: E402


def _data(rng, shape=(2, 4, 5, 6, 7), dtype=torch.float64, labels_1=True, scale=2.0):
    B, K, *sp = shape
    x = torch.from_numpy(rng.normal(0.0, scale, size=shape)).to(dtype).requires_grad_(True)
    y = torch.from_numpy(rng.integers(0, K, size=(B, 1, *sp) if labels_1 else (B, *sp)))
    return x, y


# MONAI computes its focal term in float32 (FocalLoss casts with .float()), hence 1e-6, not 1e-12.
MONAI_RTOL = 1e-6

SIGMOID_FOCAL_CASES = [
    {},
    {"include_background": False},
    {"batch": True},
    {"squared_pred": True},
    {"weight": [0.5, 1.0, 2.0, 3.0]},
    {"alpha": 0.25},
    {"gamma": 0.0},
    {"gamma": 1.5, "lambda_dice": 0.3, "lambda_focal": 2.0},
    {"include_background": False, "weight": [1.0, 2.0, 0.5], "batch": True},
    {"smooth_nr": 0.0, "smooth_dr": 1e-3},
]


@pytest.mark.parametrize("kw", SIGMOID_FOCAL_CASES)
def test_monai_dice_focal_sigmoid_focal(rng, kw):
    x, y = _data(rng)
    ours = DiceFocalLoss(focal_activation="sigmoid", **kw)(x, y)
    peer = monai.losses.DiceFocalLoss(to_onehot_y=True, softmax=True, **kw)(x, y)
    assert ours.dtype == torch.float64
    _close(ours, peer, MONAI_RTOL)
    _close(_grad(ours, x), _grad(peer, x), MONAI_RTOL)


SOFTMAX_FOCAL_CASES = [
    ({}, {}, {}),
    ({"include_background": False}, {"include_background": False}, {"include_background": False}),
    ({"batch": True, "squared_pred": True}, {"batch": True, "squared_pred": True}, {}),
    ({"alpha": [0.1, 0.2, 0.3, 0.4], "gamma": 3.0}, {}, {"alpha": [0.1, 0.2, 0.3, 0.4], "gamma": 3.0}),
    ({"alpha": 0.3}, {}, {"alpha": 0.3}),
    ({"weight": [1.0, 2.0, 3.0], "include_background": False},
     {"weight": [1.0, 2.0, 3.0], "include_background": False},
     {"weight": [1.0, 2.0, 3.0], "include_background": False}),
]


@pytest.mark.parametrize(("kw", "dice_kw", "focal_kw"), SOFTMAX_FOCAL_CASES)
def test_monai_dice_plus_softmax_focal(rng, kw, dice_kw, focal_kw):
    x, y = _data(rng)
    ours = DiceFocalLoss(**kw)(x, y)
    peer = (monai.losses.DiceLoss(softmax=True, to_onehot_y=True, **dice_kw)(x, y)
            + monai.losses.FocalLoss(use_softmax=True, to_onehot_y=True, **focal_kw)(x, y))
    _close(ours, peer, MONAI_RTOL)
    _close(_grad(ours, x), _grad(peer, x), MONAI_RTOL)


@pytest.mark.parametrize("kw", [{}, {"include_background": False}, {"alpha": 0.7, "batch": True}])
def test_monai_sigmoid_mode(rng, kw):
    x, y = _data(rng, shape=(2, 3, 4, 5, 6))
    ours = DiceFocalLoss(softmax=False, **kw)(x, y)
    dkw = {k: v for k, v in kw.items() if k != "alpha"}
    fkw = {k: v for k, v in kw.items() if k != "batch"}
    peer = (monai.losses.DiceLoss(sigmoid=True, to_onehot_y=True, **dkw)(x, y)
            + monai.losses.FocalLoss(use_softmax=False, to_onehot_y=True, **fkw)(x, y))
    _close(ours, peer, MONAI_RTOL)
    _close(_grad(ours, x), _grad(peer, x), MONAI_RTOL)


def test_single_channel_binary_sigmoid(rng):
    x = torch.from_numpy(rng.normal(size=(2, 1, 7, 1, 5))).requires_grad_(True)
    y = torch.from_numpy(rng.integers(0, 2, size=(2, 1, 7, 1, 5)))
    ours = DiceFocalLoss(softmax=False)(x, y)
    peer = monai.losses.DiceFocalLoss(sigmoid=True)(x, y.double())
    _close(ours, peer, MONAI_RTOL)
    _close(_grad(ours, x), _grad(peer, x), MONAI_RTOL)
    # the same with a float (soft-capable) one-channel target
    _close(DiceFocalLoss(softmax=False)(x, y.double()), peer, MONAI_RTOL)


def test_dice_and_focal_alone_match_monai(rng):
    x, y = _data(rng, shape=(1, 3, 9, 1, 11))
    _close(DiceLoss()(x, y), monai.losses.DiceLoss(softmax=True, to_onehot_y=True)(x, y), 1e-10)
    _close(DiceLoss(softmax=False, batch=True)(x, y),
           monai.losses.DiceLoss(sigmoid=True, to_onehot_y=True, batch=True)(x, y), 1e-10)
    _close(FocalLoss()(x, y), monai.losses.FocalLoss(use_softmax=True, to_onehot_y=True)(x, y), MONAI_RTOL)
    _close(FocalLoss(softmax=False, gamma=1.0)(x, y),
           monai.losses.FocalLoss(use_softmax=False, gamma=1.0, to_onehot_y=True)(x, y), MONAI_RTOL)


REF_CASES = [
    {},
    {"focal_activation": "sigmoid", "include_background": False},
    {"include_background": False, "gamma": 0.5},
    {"softmax": False, "alpha": [0.2, 0.4, 0.6]},
    {"softmax": False, "focal_activation": "softmax", "include_background": False},
    {"squared_pred": True, "batch": True, "weight": 2.0},
    {"ignore_index": 255},
    {"ignore_index": 1, "focal_activation": "sigmoid", "alpha": 0.4},
]

SHAPES = [(1, 3, 1, 1, 1), (2, 3, 1, 13, 1), (3, 3, 5, 7, 11), (1, 3, 2, 3), (2, 3, 17)]


@pytest.mark.parametrize("kw", REF_CASES)
@pytest.mark.parametrize("shape", SHAPES)
def test_reference_parity_awkward_shapes(rng, kw, shape, device):
    B, K, *sp = shape
    x = torch.from_numpy(rng.normal(0, 3, size=shape)).to(device).requires_grad_(True)
    y = torch.from_numpy(rng.integers(0, K, size=(B, *sp)).astype(np.int32))
    if kw.get("ignore_index") is not None:
        y[torch.from_numpy(rng.random(y.shape) < 0.3)] = kw["ignore_index"]
    y = y.to(device)
    ours = DiceFocalLoss(**kw)(x, y)
    assert ours.device == x.device
    expect = ref.dice_focal_loss(x, y, **kw)
    _close(ours, expect, 1e-10)
    _close(_grad(ours, x), _grad(expect, x), 1e-10)


@pytest.mark.parametrize("label_dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16])
def test_label_dtypes_and_layouts(rng, label_dtype):
    x, y = _data(rng, shape=(2, 3, 6, 5, 4))
    y = y.to(torch.from_numpy(np.zeros(1, dtype=label_dtype)).dtype)
    expect = DiceFocalLoss()(x, y.long())
    g_expect = _grad(expect, x)
    for target in (y, y[:, 0], torch.nn.functional.one_hot(y[:, 0].long(), 3).movedim(-1, 1).double(),
                   torch.nn.functional.one_hot(y[:, 0].long(), 3).movedim(-1, 1).to(torch.uint8)):
        got = DiceFocalLoss()(x, target)
        _close(got, expect, 1e-12)
        _close(_grad(got, x), g_expect, 1e-12)


def test_bool_target_two_classes(rng):
    x, y = _data(rng, shape=(2, 2, 5, 5, 5))
    _close(DiceFocalLoss()(x, y.bool()), DiceFocalLoss()(x, y), 1e-14)


def test_strided_transposed_and_channels_last(rng):
    base = torch.from_numpy(rng.normal(size=(2, 4, 10, 9, 8)))
    y = torch.from_numpy(rng.integers(0, 4, size=(2, 10, 9, 8)))
    views = [
        (base.contiguous(memory_format=torch.channels_last_3d), y),
        (base[:, :, ::2, :, 1:], y[:, ::2, :, 1:]),
        (base.transpose(2, 4).contiguous().transpose(2, 4), y.transpose(1, 3).contiguous().transpose(1, 3)),
        (base.permute(0, 1, 4, 3, 2), y.permute(0, 3, 2, 1)),
        (base[:, [3, 1, 0, 2]], torch.tensor([2, 1, 3, 0])[y]),
    ]
    for xv, yv in views:
        xv = xv.detach().requires_grad_(True)
        xc = xv.detach().contiguous().requires_grad_(True)
        got = DiceFocalLoss()(xv, yv)
        expect = ref.dice_focal_loss(xc, yv.contiguous())
        _close(got, expect, 1e-10)
        g = _grad(got, xv)
        assert g.shape == xv.shape
        _close(g, _grad(expect, xc), 1e-10)


def test_gradcheck_float64(rng):
    for kw in ({}, {"focal_activation": "sigmoid", "alpha": 0.3}, {"include_background": False, "gamma": 1.5},
               {"squared_pred": True, "batch": True, "softmax": False}, {"ignore_index": 2}):
        x, y = _data(rng, shape=(2, 3, 3, 2, 2), labels_1=False)
        loss = DiceFocalLoss(**kw)
        assert torch.autograd.gradcheck(lambda t, loss=loss, y=y: loss(t, y), (x,), eps=1e-6, atol=1e-7)
    xo = torch.from_numpy(rng.normal(size=(1, 3, 2, 3, 2))).requires_grad_(True)
    soft = torch.softmax(torch.from_numpy(rng.normal(size=(1, 3, 2, 3, 2))), 1)
    assert torch.autograd.gradcheck(lambda t: DiceFocalLoss()(t, soft), (xo,), eps=1e-6, atol=1e-7)


# 16-bit logits: computed in float32, so against float32 of the same (rounded) logits the value
# agrees to float32 rounding and the gradient to the output dtype's rounding.
@pytest.mark.parametrize(("dtype", "grad_rtol"), [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_half_precision_against_float32(rng, dtype, grad_rtol, device):
    x32, y = _data(rng, shape=(2, 4, 9, 10, 11), dtype=torch.float32)
    x32, y = x32.detach().to(device), y.to(device)
    xh = x32.detach().to(dtype).requires_grad_(True)
    xf = xh.detach().float().requires_grad_(True)
    for kw in ({}, {"focal_activation": "sigmoid"}):
        lh = DiceFocalLoss(**kw)(xh, y)
        lf = DiceFocalLoss(**kw)(xf, y)
        assert lh.dtype == torch.float32
        _close(lh, lf, 1e-6)
        gh = _grad(lh, xh)
        assert gh.dtype == dtype
        assert gh.device == xh.device
        _close(gh.float(), _grad(lf, xf), grad_rtol)
        # and float32 against the float64 reference (fast exp/log: ~1e-7 relative)
        _close(lf, ref.dice_focal_loss(xf.double(), y, **kw), 1e-5)


def test_ignore_index_contributes_nothing(rng):
    x, y = _data(rng, shape=(1, 3, 6, 7, 8), labels_1=False)
    ignored = torch.from_numpy(rng.random(y.shape) < 0.4)
    y[ignored] = -1
    loss_fn = DiceFocalLoss(ignore_index=-1, batch=True)
    loss = loss_fn(x, y)
    g = _grad(loss, x)
    assert bool((g.permute(1, 0, 2, 3, 4)[:, ignored] == 0).all())
    # the loss equals the loss over the kept voxels only
    keep = ~ignored[0]
    xk = x.detach()[0][:, keep].unsqueeze(0).requires_grad_(True)
    yk = y[0][keep].unsqueeze(0)
    _close(loss, DiceFocalLoss(batch=True)(xk, yk), 1e-12)
    # changing the ignored voxels' logits changes nothing
    x2 = x.detach().clone()
    x2[:, :, ignored[0]] = 100.0
    _close(loss_fn(x2, y), loss, 1e-14)


def test_empty_and_full_inputs(rng):
    x = torch.zeros((2, 3, 0, 4, 4), dtype=torch.float64, requires_grad=True)
    y = torch.zeros((2, 0, 4, 4), dtype=torch.int64)
    loss = DiceFocalLoss()(x, y)
    assert torch.isfinite(loss)
    assert _grad(loss, x).shape == x.shape
    xf, _ = _data(rng, shape=(1, 3, 4, 4, 4))
    full = torch.full((1, 4, 4, 4), 2, dtype=torch.int64)
    _close(DiceFocalLoss()(xf, full), ref.dice_focal_loss(xf, full), 1e-10)
    all_ignored = torch.full((1, 4, 4, 4), 9, dtype=torch.int64)
    assert torch.isfinite(DiceFocalLoss(ignore_index=9)(xf, all_ignored))


def test_real_labels(rng):
    labels, _ = load_volume("itk_kmeans_t1_seg6.nii.gz")
    crop = labels[24:32, 36:68, 36:68].astype(np.int64)
    classes = int(labels.max()) + 1
    y = torch.from_numpy(crop)[None]
    onehot = torch.nn.functional.one_hot(y, classes).movedim(-1, 1).double()
    x = (3.0 * onehot + torch.from_numpy(rng.normal(0, 1.5, size=onehot.shape))).requires_grad_(True)
    ours = DiceFocalLoss(focal_activation="sigmoid", include_background=False)(x, y)
    peer = monai.losses.DiceFocalLoss(to_onehot_y=True, softmax=True, include_background=False)(x, y[:, None])
    _close(ours, peer, MONAI_RTOL)
    _close(_grad(ours, x), _grad(peer, x), MONAI_RTOL)


def test_input_not_modified(rng):
    x, y = _data(rng)
    x0, y0 = x.detach().clone(), y.clone()
    DiceFocalLoss()(x, y).backward()
    assert torch.equal(x.detach(), x0)
    assert torch.equal(y, y0)


def test_thread_count_independent(rng):
    x, y = _data(rng, shape=(2, 3, 20, 30, 31), dtype=torch.float32)
    before = medseg_fast.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            medseg_fast.set_num_threads(n)
            loss = DiceFocalLoss(focal_activation="sigmoid")(x, y)
            results.append((loss.detach(), _grad(loss, x)))
    finally:
        medseg_fast.set_num_threads(before)
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_bad_input(rng):
    x, y = _data(rng)
    loss = DiceFocalLoss()
    with pytest.raises(ValueError, match=r"input.shape=\(2, 4, 5, 6, 7\), target.shape=\(2, 1, 5, 6, 8\)"):
        loss(x, torch.zeros((2, 1, 5, 6, 8), dtype=torch.int64))
    with pytest.raises(ValueError, match="batch size and spatial shape"):
        loss(x, torch.zeros((3, 5, 6, 7), dtype=torch.int64))
    bad = y.clone()
    bad[0, 0, 0, 0, 0] = 4
    with pytest.raises(ValueError, match=r"labels in \[0, 4\).*got 1 voxel"):
        loss(x, bad)
    bad = y.clone()
    bad[1, 0, 1, 1, 1] = -3
    with pytest.raises(ValueError, match=r"or ignore_index=255, got 1 voxel"):
        DiceFocalLoss(ignore_index=255)(x, bad)
    with pytest.raises(ValueError, match="weight must have one value per included class"):
        DiceFocalLoss(weight=[1.0, 2.0])(x, y)
    with pytest.raises(ValueError, match=r"weight must have one value per included class \(3"):
        DiceFocalLoss(weight=[1.0, 2.0, 3.0, 4.0], include_background=False)(x, y)
    with pytest.raises(ValueError, match="alpha must have one value"):
        DiceFocalLoss(alpha=[0.5, 0.5])(x, y)
    with pytest.raises(TypeError, match="logits.*dtype=torch.int64"):
        loss(torch.zeros((2, 4, 5, 6, 7), dtype=torch.int64), y)
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        loss(np.zeros((2, 4, 5, 6, 7)), y)
    with pytest.raises(ValueError, match="ignore_index needs an integer class-map target"):
        DiceFocalLoss(ignore_index=0)(x, torch.zeros_like(x))
    with pytest.raises(ValueError, match="focal_activation must be"):
        DiceFocalLoss(focal_activation="tanh")
    with pytest.raises(ValueError, match="at least 2 channels"):
        loss(torch.zeros((1, 1, 3, 3, 3)), torch.zeros((1, 3, 3, 3), dtype=torch.int64))
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        DiceFocalLoss(gamma=-1.0)


def test_scalar_alpha_ignored_warning(rng):
    x, y = _data(rng)
    with pytest.warns(UserWarning, match="scalar `alpha` ignored"):
        DiceFocalLoss(include_background=False, alpha=0.3)(x, y)


def test_import_without_torch():
    code = "import sys; sys.modules['torch'] = None; import medseg_fast; print(medseg_fast.__version__)"
    env_path = str(__import__("pathlib").Path(medseg_fast.__file__).parent.parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": env_path, "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert medseg_fast.losses.DiceFocalLoss is DiceFocalLoss


def test_out_of_range_label(rng, device):
    # CPU checks the labels (an error that names them); CUDA (and the emulated CUDA drivers) must
    # not synchronise for a check, so the loss is NaN instead.
    x, y = _data(rng, dtype=torch.float32)
    y = y.clone()
    y[0, 0, 0, 0, 0] = 7
    x, y = x.detach().to(device), y.to(device)
    if device == "cpu":
        with pytest.raises(ValueError, match=r"labels in \[0, 4\).*got 1 voxel"):
            DiceFocalLoss()(x, y)
    else:
        assert torch.isnan(DiceFocalLoss()(x, y)).item()
