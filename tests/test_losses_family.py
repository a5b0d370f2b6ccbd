"""The rest of the loss family (CE, generalised Dice, boundary, exp-log, deep supervision) and a
short convergence test of the fused loss against the unfused reference."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
monai = pytest.importorskip("monai")

from conftest import load_volume  # noqa: E402
from loss_helpers import assert_close as _close  # noqa: E402
from loss_helpers import grad_of as _grad  # noqa: E402
from medseg_fast.losses import (  # noqa: E402
    BoundaryLoss,
    CrossEntropyLoss,
    DeepSupervisionLoss,
    DiceFocalLoss,
    DiceLoss,
    ExpLogLoss,
    GeneralizedDiceLoss,
)
from medseg_fast.reference import losses as ref  # noqa: E402


def _data(rng, shape=(2, 4, 5, 6, 7)):
    B, K, *sp = shape
    x = torch.from_numpy(rng.normal(0.0, 2.0, size=shape)).requires_grad_(True)
    y = torch.from_numpy(rng.integers(0, K, size=(B, *sp)))
    return x, y


@pytest.mark.parametrize("weight", [None, [0.2, 1.0, 2.0, 0.7]])
@pytest.mark.parametrize("ignore", [-100, 3])
def test_cross_entropy_matches_torch(rng, weight, ignore):
    x, y = _data(rng)
    y[torch.from_numpy(rng.random(y.shape) < 0.2)] = ignore
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    ours = CrossEntropyLoss(weight, ignore_index=ignore)(x, y)
    peer = torch.nn.functional.cross_entropy(x, y, weight=w, ignore_index=ignore)
    _close(ours, peer, 1e-12)
    _close(_grad(ours, x), _grad(peer, x), 1e-12)


def test_cross_entropy_probability_targets(rng):
    x, _ = _data(rng, shape=(2, 3, 4, 1, 5))
    p = torch.softmax(torch.from_numpy(rng.normal(size=x.shape)), 1)
    w = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    ours = CrossEntropyLoss(w)(x, p)
    peer = torch.nn.functional.cross_entropy(x, p, weight=w)
    _close(ours, peer, 1e-12)
    _close(_grad(ours, x), _grad(peer, x), 1e-12)


@pytest.mark.parametrize("kw", [{}, {"batch": True}, {"include_background": False}, {"w_type": "simple"},
                                {"softmax": False, "w_type": "uniform"}])
def test_generalized_dice_matches_monai(rng, kw):
    x, y = _data(rng)
    y[0][y[0] == 2] = 1   # an absent class in item 0: MONAI's largest-weight rule
    act = {"softmax": True} if kw.get("softmax", True) else {"sigmoid": True}
    mk = {k: v for k, v in kw.items() if k != "softmax"}
    ours = GeneralizedDiceLoss(**kw)(x, y)
    peer = monai.losses.GeneralizedDiceLoss(to_onehot_y=True, **act, **mk)(x, y[:, None])
    # MONAI computes the class weights in float32
    _close(ours, peer, 1e-6)
    _close(_grad(ours, x), _grad(peer, x), 1e-6)
    _close(ours, ref.generalized_dice_loss(x, y, **kw), 1e-12)


@pytest.mark.parametrize("kw", [{}, {"include_background": False}, {"softmax": False}])
def test_boundary_matches_monai(rng, kw):
    x, y = _data(rng, shape=(2, 3, 6, 7, 8))
    act = {"softmax": True} if kw.get("softmax", True) else {"sigmoid": True}
    mk = {k: v for k, v in kw.items() if k != "softmax"}
    ours = BoundaryLoss(**kw)(x, y)
    peer = monai.losses.BoundaryLoss(to_onehot_y=True, **act, **mk)(x, y[:, None])
    _close(ours, peer, 1e-6)   # MONAI's distance maps are float32
    _close(_grad(ours, x), _grad(peer, x), 1e-6)
    _close(ours, ref.boundary_loss(x, y, **kw), 1e-12)


def test_boundary_real_tumour_mask(rng):
    labels, _ = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    y = torch.from_numpy((labels[8:24, 32:96, 32:96] > 0).astype(np.int64))[None]
    x = torch.from_numpy(rng.normal(size=(1, 2, *y.shape[1:]))).requires_grad_(True)
    ours = BoundaryLoss(include_background=False)(x, y)
    peer = monai.losses.BoundaryLoss(softmax=True, to_onehot_y=True, include_background=False)(x, y[:, None])
    _close(ours, peer, 1e-6)
    # precomputed distance maps give the same loss
    from medseg_fast.losses._signed_distance import class_signed_distance

    phi = class_signed_distance(y, 2, False, 3, dtype=torch.float64)
    _close(BoundaryLoss(include_background=False)(x, y, distance=phi), ours, 1e-14)


@pytest.mark.parametrize("kw", [{}, {"include_background": False, "batch": True}, {"gamma_dice": 1.0, "gamma_cross": 2.0}])
def test_exp_log_matches_reference(rng, kw):
    x, y = _data(rng)
    ours = ExpLogLoss(**kw)(x, y)
    expect = ref.exp_log_loss(x, y, **kw)
    _close(ours, expect, 1e-12)
    _close(_grad(ours, x), _grad(expect, x), 1e-10)


def test_exp_log_gamma_one_is_dice_log_plus_weighted_ce(rng):
    x, y = _data(rng)
    ours = ExpLogLoss(gamma_dice=1.0, gamma_cross=1.0, w_dice=0.0, w_cross=1.0, class_weights=[1.0] * 4)(x, y)
    _close(ours, torch.nn.functional.cross_entropy(x, y), 1e-12)


def test_family_gradcheck(rng):
    x, y = _data(rng, shape=(2, 3, 2, 3, 2))
    for loss in (CrossEntropyLoss([1.0, 2.0, 0.5]), GeneralizedDiceLoss(), ExpLogLoss(), BoundaryLoss()):
        assert torch.autograd.gradcheck(lambda t, loss=loss: loss(t, y), (x,), eps=1e-6, atol=1e-7)


def test_deep_supervision(rng):
    y = torch.from_numpy(rng.integers(0, 3, size=(1, 8, 8, 8)))
    outs = [torch.from_numpy(rng.normal(size=(1, 3, *s))).requires_grad_(True) for s in ((8, 8, 8), (4, 4, 4), (2, 2, 2))]
    base = DiceFocalLoss()
    ds = DeepSupervisionLoss(base)
    assert ds.level_weights(3) == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    y4 = torch.nn.functional.interpolate(y[:, None].float(), size=(4, 4, 4), mode="nearest-exact").long()[:, 0]
    y2 = torch.nn.functional.interpolate(y[:, None].float(), size=(2, 2, 2), mode="nearest-exact").long()[:, 0]
    expect = 4 / 7 * base(outs[0], y) + 2 / 7 * base(outs[1], y4) + 1 / 7 * base(outs[2], y2)
    _close(ds(outs, y), expect, 1e-14)
    _close(ds(outs, [y, y4, y2]), expect, 1e-14)
    # MONAI's "exp" mode with unnormalised 1/2^i weights
    ds_monai = monai.losses.DeepSupervisionLoss(
        monai.losses.DiceLoss(softmax=True, to_onehot_y=True), weight_mode="exp")
    ours = DeepSupervisionLoss(DiceLoss(), weights=[1.0, 0.5, 0.25], normalize=False)
    _close(ours(outs, y), ds_monai(outs, y[:, None].double()), 1e-6)
    with pytest.raises(ValueError, match="one per output"):
        ds(outs, [y, y4])
    with pytest.raises(ValueError, match="weights must be non-negative"):
        DeepSupervisionLoss(base, weights=[1.0, -1.0])


def test_family_bad_input(rng):
    x, y = _data(rng)
    with pytest.raises(ValueError, match="weight must have one value per included class"):
        CrossEntropyLoss([1.0, 2.0])(x, y)
    with pytest.raises(ValueError, match="w_type must be"):
        GeneralizedDiceLoss(w_type="cubic")
    with pytest.raises(ValueError, match="distance must have the shape of input"):
        BoundaryLoss()(x, y, distance=torch.zeros(2, 4, 5, 6))
    with pytest.raises(TypeError, match="logits"):
        GeneralizedDiceLoss()(x.detach().long(), y)


def test_convergence_fused_vs_reference():
    """A tiny 3-D conv net trained 50 steps with the fused and the unfused reference loss (explicit
    one-hot, sigmoid and focal tensors; itself equal to MONAI DiceFocalLoss, see test_losses.py):
    the same loss curve."""
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(2, 1, 8, 8, 8, generator=gen, dtype=torch.float64)
    labels = (image[:, 0] > 0.3).long() + (image[:, 0] > 1.2).long()

    def train(loss_fn):
        torch.manual_seed(1)
        net = torch.nn.Sequential(
            torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 3, 3, padding=1)
        ).double()
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        curve = []
        for _ in range(50):
            opt.zero_grad()
            loss = loss_fn(net(image), labels)
            loss.backward()
            opt.step()
            curve.append(loss.detach().item())
        return np.array(curve)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny convolutions: torch's thread pool only adds contention
    try:
        fused = train(DiceFocalLoss(focal_activation="sigmoid"))
        unfused = train(lambda x, y: ref.dice_focal_loss(x, y, focal_activation="sigmoid"))
    finally:
        torch.set_num_threads(threads)
    assert fused[-1] < 0.6 * fused[0]
    np.testing.assert_allclose(fused, unfused, rtol=1e-8)
