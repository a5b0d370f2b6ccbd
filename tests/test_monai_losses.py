"""medseg_fast.monai loss classes against the installed MONAI classes of the same name.

Each case builds MONAI's class and ours from the same kwargs and compares the loss (type, shape,
dtype, value), the gradient with respect to the logits (torch.autograd) and the warnings: within
1e-6 in float64 (MONAI's FocalLoss computes in float32 whatever the input: float32 tolerance
there, plus a float64 check against MONAI's own focal functions), float32 within 1e-5 (values) /
2e-5 of the largest gradient entry. Also: that the fused kernel really runs for the options it
claims, MONAI's weight rules, the cases delegated to MONAI, configs, bad arguments and a real
label map.
"""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import pytest
from conftest import load_volume

torch = pytest.importorskip("torch")
ml = pytest.importorskip("monai.losses")
import medseg_fast.monai.losses as fl_mod  # noqa: E402
from medseg_fast import monai as fm  # noqa: E402
from monai.losses.focal_loss import sigmoid_focal_loss, softmax_focal_loss  # noqa: E402

NAMES = ["DiceLoss", "FocalLoss", "DiceFocalLoss", "DiceCELoss", "GeneralizedDiceLoss"]
F64 = (1e-6, 1e-6)      # (value rtol, gradient tolerance relative to max |grad|)
F32 = (1e-5, 2e-5)


# ----------------------------------------------------------------------------- helpers
@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the fused-kernel calls made by medseg_fast.monai.losses."""
    calls = []
    real = fl_mod.seg_sums

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fl_mod, "seg_sums", counting)
    return calls


def onehot(labels: torch.Tensor, classes: int, dtype=torch.float64) -> torch.Tensor:
    """(B, 1, *spatial) labels -> (B, C, *spatial)."""
    return torch.nn.functional.one_hot(labels[:, 0].long(), classes).movedim(-1, 1).to(dtype)


def evaluate(loss, x: torch.Tensor, t: torch.Tensor):
    """(loss value, d sum(loss) / d x, warning messages)."""
    xg = x.detach().clone().requires_grad_(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = loss(xg, t)
    (g,) = torch.autograd.grad(out.sum(), xg)
    return out, g, [str(w.message) for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning))]


def assert_close(ours, theirs, rtol, what, atol_scale=None):
    assert type(ours) is type(theirs), what
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    assert ours.dtype == theirs.dtype, (what, ours.dtype, theirs.dtype)
    a, b = ours.detach().double(), theirs.detach().double()
    assert torch.equal(torch.isnan(a), torch.isnan(b)), (what, a, b)
    scale = float(b[torch.isfinite(b)].abs().max()) if bool(torch.isfinite(b).any()) else 1.0
    atol = rtol * max(scale, 1e-30) if atol_scale is None else atol_scale
    ok = torch.isfinite(b)
    assert torch.allclose(a[ok], b[ok], rtol=rtol, atol=atol), (what, float((a - b)[ok].abs().max()), scale)


def both(name, kw):
    theirs, ours = getattr(ml, name)(**kw), getattr(fm, name)(**kw)
    assert isinstance(ours, getattr(ml, name))
    return theirs, ours


def compare(name, kw, x, t, tol=F64, degenerate=False):
    """Loss value, gradient and warnings of ours vs MONAI's; inputs unchanged.

    ``degenerate``: a softmax over a single channel with ``0 < gamma < 1`` (FocalLoss), a loss that is
    identically 0: MONAI's autograd gives NaN (``0 ** gamma`` differentiated at 0, times 0), ours
    the exact gradient 0 there; every other entry must agree."""
    theirs, ours = both(name, kw)
    x0, t0 = x.clone(), t.clone()
    what = f"{name} {kw} {tuple(x.shape)} {x.dtype} / {tuple(t.shape)} {t.dtype}"
    v_t, g_t, w_t = evaluate(theirs, x, t)
    v_o, g_o, w_o = evaluate(ours, x, t)
    assert torch.equal(x, x0), "input modified"
    assert torch.equal(t, t0), "target modified"
    assert_close(v_o, v_t, tol[0], what + " value", atol_scale=tol[0] * 1e-3)
    if degenerate:
        nan = torch.isnan(g_t)
        assert bool(nan.any()), what
        assert bool((g_o[nan] == 0).all()), what
        g_t = torch.where(nan, torch.zeros_like(g_t), g_t)
    assert_close(g_o, g_t, tol[1], what + " gradient")
    assert w_o == w_t, (what, w_o, w_t)
    return v_o


def data(shape, seed, dtype=torch.float64, empty_item=True):
    """(logits, labels (B, 1, *spatial), one-hot target, soft target) with item 1 all background."""
    gen = torch.Generator().manual_seed(seed)
    B, C = shape[:2]
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2.5).to(dtype)
    lab = torch.randint(0, max(C, 2), (B, 1) + tuple(shape[2:]), generator=gen)
    if C == 1:
        lab = lab.clamp(max=1)
    if empty_item and B > 1:
        lab[1] = 0
    oh = onehot(lab, C, dtype) if C > 1 else lab.to(dtype)
    soft = torch.rand(shape, generator=gen, dtype=torch.float64).to(dtype)
    return x, lab, oh, soft


SHAPES = [(2, 3, 5, 7), (3, 4, 6, 1, 5), (2, 2, 1, 9, 3), (2, 1, 4, 3, 5), (1, 5, 3, 3, 3)]


def targets(name, kw, lab, oh, soft, C):
    """(kwargs, target) pairs: label map with to_onehot_y, one-hot, soft."""
    out = [(dict(kw, to_onehot_y=True), lab)] if C > 1 else [(dict(kw, to_onehot_y=True), lab.double())]
    out.append((kw, oh))
    out.append((kw, soft))
    return out


def test_names_and_subclasses():
    for name in NAMES:
        cls = getattr(fm, name)
        assert issubclass(cls, getattr(ml, name))
        assert cls.__name__ == name


# ----------------------------------------------------------------------------- Dice
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", ["sigmoid", "softmax"])
def test_dice_loss(shape, act, kernel_calls):
    x, lab, oh, soft = data(shape, sum(shape) + len(act))
    C = shape[1]
    options = [dict(), dict(squared_pred=True), dict(jaccard=True), dict(batch=True, smooth_nr=0.0, smooth_dr=1e-3),
               dict(squared_pred=True, jaccard=True, batch=True), dict(smooth_nr=1.0, smooth_dr=1.0)]
    for opt, ib, red in itertools.product(options, (True, False), ("none", "mean", "sum")):
        kw = dict(include_background=ib, reduction=red, **{act: True}, **opt)
        for kwt, t in targets("DiceLoss", kw, lab, oh, soft, C):
            compare("DiceLoss", kwt, x, t)
    if act == "sigmoid" or C > 1:
        assert kernel_calls, "the fused kernel did not run"


def test_dice_loss_soft_label():
    """soft_label=True: MONAI's norm-based tp (the kernel for hard targets and squared_pred)."""
    x, lab, oh, soft = data((2, 3, 6, 5, 4), 1)
    for kw in (dict(softmax=True, soft_label=True), dict(sigmoid=True, soft_label=True, squared_pred=True),
               dict(sigmoid=True, soft_label=True, jaccard=True, batch=True)):
        for t in (oh, soft, soft.float()):
            compare("DiceLoss", kw, x, t)


def test_dice_loss_weight_rules():
    x, lab, oh, soft = data((2, 3, 5, 6, 4), 2)
    for w in ([0.2, 1.0, 3.0], 2.0, 3, torch.tensor([1.0, 0.0, 2.0]), (0.5, 0.5, 0.5)):
        for red in ("none", "mean", "sum"):
            compare("DiceLoss", dict(softmax=True, to_onehot_y=True, weight=w, reduction=red), x, lab)
    compare("DiceLoss", dict(softmax=True, to_onehot_y=True, weight=[1.0, 4.0], include_background=False), x, lab)
    # only one class left: MONAI ignores weight (even a wrong-length or negative one)
    x2, lab2, oh2, _ = data((2, 2, 5, 6, 4), 3)
    x1, lab1, _, _ = data((2, 1, 5, 6, 4), 4)
    for w in ([7.0], [1.0, 2.0, 3.0], -1.0, 5.0):
        compare("DiceLoss", dict(softmax=True, to_onehot_y=True, include_background=False, weight=w), x2, lab2)
        compare("DiceLoss", dict(sigmoid=True, weight=w), x1, lab1.double())
    # weight length / sign errors: MONAI's messages
    for w in ([1.0, 2.0], [1.0, -1.0, 2.0], -0.5):
        _raises_like("DiceLoss", dict(softmax=True, to_onehot_y=True, weight=w), x, lab)


@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
def test_generalized_dice_loss(w_type, kernel_calls):
    for shape, act in [((2, 3, 6, 5), "softmax"), ((3, 4, 5, 1, 6), "sigmoid"), ((2, 1, 4, 4, 4), "sigmoid"),
                       ((2, 2, 3, 7, 2), "softmax")]:
        x, lab, oh, soft = data(shape, sum(shape))
        C = shape[1]
        for ib, red, batch in itertools.product((True, False), ("none", "mean", "sum"), (False, True)):
            kw = dict(include_background=ib, reduction=red, batch=batch, w_type=w_type, **{act: True})
            for kwt, t in targets("GeneralizedDiceLoss", kw, lab, oh, soft, C):
                compare("GeneralizedDiceLoss", kwt, x, t)
        # soft_label with soft targets runs MONAI's code
        compare("GeneralizedDiceLoss", dict(soft_label=True, **{act: True}), x, soft)
    assert kernel_calls


# ----------------------------------------------------------------------------- focal
@pytest.mark.parametrize("use_softmax", [False, True])
def test_focal_loss(use_softmax, kernel_calls):
    for shape in [(2, 3, 5, 7), (3, 4, 6, 1, 5), (2, 1, 4, 3, 5), (2, 2, 4, 4, 4)]:
        if use_softmax and shape[1] == 1:
            continue
        x, lab, oh, soft = data(shape, sum(shape) + use_softmax)
        C = shape[1]
        for j, (gamma, alpha) in enumerate([(2.0, None), (0.0, None), (0.5, 0.25), (3.3, 0.8), (2, 1)]):
            # reduction "none"/"sum" run MONAI's code: once per shape is enough
            for ib, red in itertools.product((True, False), ("none", "mean", "sum") if j == 0 else ("mean",)):
                kw = dict(include_background=ib, reduction=red, gamma=gamma, alpha=alpha, use_softmax=use_softmax)
                degenerate = use_softmax and not ib and C == 2 and 0 < gamma < 1 and red == "mean"
                for kwt, t in targets("FocalLoss", kw, lab, oh, soft, C):
                    # MONAI computes the focal loss in float32 whatever the input
                    compare("FocalLoss", kwt, x, t, F32, degenerate)
                    compare("FocalLoss", kwt, x.float(), t.float() if t.is_floating_point() else t, F32, degenerate)
    assert kernel_calls


def test_focal_loss_float64_reference(kernel_calls):
    """Ours in float64 vs MONAI's focal functions applied in float64 (reduction mean)."""
    x, lab, oh, soft = data((2, 3, 6, 5, 4), 11)
    for t in (oh, soft):
        for gamma, alpha in [(2.0, None), (0.7, 0.3)]:
            for use_softmax in (False, True):
                loss = fm.FocalLoss(gamma=gamma, alpha=alpha, use_softmax=use_softmax)
                xg = x.clone().requires_grad_(True)
                ours = loss(xg, t)
                f = softmax_focal_loss if use_softmax else sigmoid_focal_loss
                xr = x.clone().requires_grad_(True)
                ref = f(xr, t, gamma, alpha).mean()
                assert ours.dtype == torch.float32
                assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
                (g_o,) = torch.autograd.grad(ours, xg)
                (g_r,) = torch.autograd.grad(ref, xr)
                assert torch.allclose(g_o, g_r, rtol=1e-5, atol=1e-6 * float(g_r.abs().max()))
    assert kernel_calls


def test_focal_loss_delegated_options():
    """Per-class alpha, weight, reduction none/sum: MONAI's code (same results)."""
    x, lab, oh, soft = data((2, 3, 5, 6, 4), 12)
    for kw in (dict(alpha=[0.2, 0.3, 0.5]), dict(weight=[1.0, 2.0, 0.5]), dict(weight=2.0, reduction="sum"),
               dict(alpha=[0.1, 0.5, 0.4], use_softmax=True, reduction="none"), dict(weight=0.5, use_softmax=True)):
        compare("FocalLoss", dict(to_onehot_y=True, **kw), x, lab, F32)
        compare("FocalLoss", kw, x, oh, F32)
    _raises_like("FocalLoss", dict(alpha=[0.2, 0.3]), x, oh)
    _raises_like("FocalLoss", dict(weight=[1.0, -2.0, 1.0]), x, oh)


# ----------------------------------------------------------------------------- combined
def test_dice_ce_loss(kernel_calls):
    for shape, act in [((2, 3, 6, 5), "softmax"), ((2, 4, 5, 1, 6), "softmax"), ((2, 1, 4, 5, 3), "sigmoid"),
                       ((2, 3, 4, 4, 4), "sigmoid")]:
        x, lab, oh, soft = data(shape, sum(shape) + 1)
        C = shape[1]
        for opts in (dict(), dict(lambda_dice=0.3, lambda_ce=2.0), dict(batch=True, squared_pred=True),
                     dict(include_background=False, jaccard=True), dict(label_smoothing=0.1, reduction="sum"),
                     dict(weight=torch.tensor([0.5, 1.0, 2.0, 1.5][:C] if C > 1 else [2.0], dtype=x.dtype)),
                     dict(lambda_dice=0.0), dict(lambda_ce=0.0, smooth_nr=0.0)):
            kw = dict(**{act: True}, **opts)
            pairs = [(dict(kw, to_onehot_y=True), lab if C > 1 else lab.double()), (kw, oh)]
            if C > 1:
                pairs.append((kw, soft))
            for kwt, t in pairs:
                compare("DiceCELoss", kwt, x, t)
    assert kernel_calls


def test_dice_focal_loss(kernel_calls):
    for shape, act in [((2, 3, 6, 5), "softmax"), ((2, 4, 5, 1, 6), "sigmoid"), ((2, 1, 4, 5, 3), "sigmoid")]:
        x, lab, oh, soft = data(shape, sum(shape) + 2)
        C = shape[1]
        for opts in (dict(), dict(lambda_dice=0.3, lambda_focal=2.0, gamma=1.5), dict(alpha=0.25, batch=True),
                     dict(include_background=False, jaccard=True, reduction="sum"), dict(squared_pred=True),
                     dict(weight=[0.5, 1.0, 2.0, 1.5][:C] if C > 1 else 2.0, reduction="mean"),
                     dict(reduction="none")):
            kw = dict(**{act: True}, **opts)
            pairs = [(dict(kw, to_onehot_y=True), lab if C > 1 else lab.double()), (kw, oh), (kw, soft)]
            for kwt, t in pairs:
                compare("DiceFocalLoss", kwt, x, t, F32)   # the focal term is float32 in MONAI
    assert kernel_calls


# ----------------------------------------------------------------------------- float32, real data
@pytest.mark.parametrize("name", NAMES)
def test_float32_tolerance(name):
    x, lab, oh, soft = data((2, 4, 20, 18, 12), 21, torch.float32)
    kw = dict(to_onehot_y=True) if name == "FocalLoss" else dict(to_onehot_y=True, softmax=True)
    compare(name, kw, x, lab, F32)
    if name != "FocalLoss":
        compare(name, dict(sigmoid=True, batch=True), x, oh, F32)


def test_real_label_map():
    """DK-atlas crop (4 most frequent labels + background) as target; logits from a smoothed
    one-hot plus noise; float32 and float64, every loss."""
    arr, _ = load_volume("dk_atlas_mni_1mm.nii.gz")
    crop = torch.from_numpy(arr.astype(np.int64))[60:92, 70:102, 50:82]
    values, freq = torch.unique(crop[crop > 0], return_counts=True)
    keep = values[torch.argsort(freq, descending=True)[:4]]
    lab = torch.zeros_like(crop)
    for i, v in enumerate(keep):
        lab[crop == v] = i + 1
    lab = lab[None, None]
    gen = torch.Generator().manual_seed(0)
    x = onehot(lab, 5) * 4.0 + torch.randn((1, 5) + lab.shape[2:], generator=gen, dtype=torch.float64)
    for dtype, tol in ((torch.float64, F64), (torch.float32, F32)):
        for name in NAMES:
            kw = dict(to_onehot_y=True, include_background=False)
            if name != "FocalLoss":
                kw["softmax"] = True
            compare(name, kw, x.to(dtype), lab, F32 if name in ("FocalLoss", "DiceFocalLoss") else tol)


def test_gradcheck_float64():
    x, lab, oh, soft = data((1, 3, 3, 4, 2), 31)
    x = x.clone().requires_grad_(True)
    for name, kw in [("DiceLoss", dict(softmax=True, to_onehot_y=True)), ("DiceLoss", dict(sigmoid=True, squared_pred=True)),
                     ("GeneralizedDiceLoss", dict(softmax=True, to_onehot_y=True))]:
        loss = getattr(fm, name)(**kw)
        t = lab if kw.get("to_onehot_y") else soft
        assert torch.autograd.gradcheck(lambda v, loss=loss, t=t: loss(v, t), (x,), eps=1e-6, atol=1e-8)


def test_non_contiguous_and_nan():
    x, lab, oh, soft = data((2, 3, 7, 6, 5), 41)
    xt = x.transpose(2, 4)             # strided views
    ot = oh.transpose(2, 4)
    for name in ("DiceLoss", "GeneralizedDiceLoss", "DiceCELoss"):
        compare(name, dict(softmax=True), xt, ot)
        compare(name, dict(softmax=True, to_onehot_y=True), xt, lab.transpose(2, 4))
    compare("FocalLoss", dict(), xt, ot, F32)
    xn = x.clone()
    xn[0, 1, 2, 2, 2] = float("nan")
    for name in ("DiceLoss", "GeneralizedDiceLoss"):
        theirs, ours = both(name, dict(softmax=True))
        assert torch.isnan(ours(xn, oh)).item() == torch.isnan(theirs(xn, oh)).item()


# ----------------------------------------------------------------------------- delegation, configs, errors
def test_delegated_cases(kernel_calls):
    """other_act, no activation, ignore_index, 16-bit logits: MONAI's forward (same results)."""
    x, lab, oh, soft = data((2, 3, 5, 6, 4), 51)
    for name in ("DiceLoss", "GeneralizedDiceLoss", "DiceCELoss", "DiceFocalLoss"):
        compare(name, dict(other_act=torch.tanh), x, oh)
        compare(name, dict(), torch.sigmoid(x), oh)
        compare(name, dict(to_onehot_y=True), torch.softmax(x, 1), lab)
    compare("DiceLoss", dict(softmax=True, to_onehot_y=True, ignore_index=2), x, lab)
    compare("FocalLoss", dict(to_onehot_y=True, ignore_index=1), x, lab, F32)
    kernel_calls.clear()
    for dt in (torch.float16, torch.bfloat16):
        theirs, ours = both("DiceLoss", dict(softmax=True))
        assert torch.equal(ours(x.to(dt), oh.to(dt)), theirs(x.to(dt), oh.to(dt)))
    assert not kernel_calls
    # softmax with one channel: MONAI's warning, no activation
    x1, lab1, _, _ = data((2, 1, 4, 5), 52)
    compare("DiceLoss", dict(softmax=True, to_onehot_y=True, include_background=False), x1, lab1.double())


CONFIGS = {
    "DiceLoss": dict(include_background=False, to_onehot_y=True, softmax=True, squared_pred=True, jaccard=False,
                     reduction="mean", smooth_nr=0.0, smooth_dr=1e-6, batch=True, weight=[1.0, 2.0], soft_label=False),
    "FocalLoss": dict(include_background=True, to_onehot_y=True, gamma=2.0, alpha=0.25, reduction="mean",
                      use_softmax=False),
    "DiceFocalLoss": dict(include_background=True, to_onehot_y=True, softmax=True, gamma=1.0, lambda_dice=1.0,
                          lambda_focal=0.5, alpha=None, batch=False),
    "DiceCELoss": dict(include_background=True, to_onehot_y=True, softmax=True, lambda_dice=1.0, lambda_ce=1.0,
                       label_smoothing=0.0, batch=True),
    "GeneralizedDiceLoss": dict(include_background=True, to_onehot_y=True, softmax=True, w_type="simple",
                                reduction="sum", batch=False),
}


@pytest.mark.parametrize("name", NAMES)
def test_monai_config_constructs_ours(name):
    cfg = CONFIGS[name]
    theirs, ours = both(name, dict(cfg))
    assert set(vars(ours)) == set(vars(theirs))
    sd_t, sd_o = theirs.state_dict(), ours.state_dict()
    assert sd_t.keys() == sd_o.keys()
    assert all(torch.equal(sd_o[k], v) for k, v in sd_t.items())
    ours.load_state_dict(sd_t)
    x, lab, _, _ = data((2, 3, 6, 5, 4), 61)
    compare(name, dict(cfg), x, lab, F32 if "Focal" in name else F64)
    # a module built through a MONAI-style config dict (class path + kwargs)
    from monai.utils import instantiate
    built = instantiate(f"medseg_fast.monai.{name}", "default", **cfg)
    assert type(built) is getattr(fm, name)


def _raises_like(name, kw, x, t):
    """Building and calling ``name`` with ``kw`` raises the same exception type and message in MONAI and ours."""
    def run(mod):
        loss = getattr(mod, name)(**kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return loss(x, t)

    expected = _exception_of(lambda: run(ml))
    with pytest.raises(type(expected), match=f"^{re.escape(str(expected))}$"):
        run(fm)


def _exception_of(fn) -> BaseException:
    """What ``fn()`` raises (fails the test when it raises nothing)."""
    try:
        fn()
    except Exception as e:   # noqa: BLE001 -- whatever MONAI raises is the expectation
        return e
    pytest.fail("MONAI raised nothing")


@pytest.mark.parametrize("name", NAMES)
def test_bad_args_raise_like_monai(name):
    x, lab, oh, _ = data((2, 3, 5, 6), 71)
    act = {} if name == "FocalLoss" else dict(softmax=True)
    bad = [dict(reduction="bogus")]
    if name != "FocalLoss":
        bad += [dict(sigmoid=True, softmax=True), dict(other_act="tanh"), dict(softmax=True, other_act=torch.tanh)]
    if name in ("DiceFocalLoss", "DiceCELoss"):
        bad += [dict(lambda_dice=-1.0), dict(lambda_focal=-0.1) if name == "DiceFocalLoss" else dict(lambda_ce=-0.1)]
    if name == "GeneralizedDiceLoss":
        bad.append(dict(w_type="cubic"))
    for kw in bad:
        _raises_like(name, kw, x, oh)
    # forward errors: target shape, label values out of range, rank mismatch
    _raises_like(name, act, x, oh[:, :2])
    _raises_like(name, act, x, oh[..., :4])
    _raises_like(name, dict(to_onehot_y=True, **act), x, lab + 3)
    _raises_like(name, dict(to_onehot_y=True, **act), x, lab[:, 0])


def _same_meta(ours, theirs) -> None:
    assert type(ours) is type(theirs)
    assert ours.is_batch == theirs.is_batch
    assert ours.meta.keys() == theirs.meta.keys()
    for k, v in theirs.meta.items():
        assert torch.equal(ours.meta[k], v) if isinstance(v, torch.Tensor) else ours.meta[k] == v, k
    assert len(ours.applied_operations) == len(theirs.applied_operations)


@pytest.mark.parametrize("name", NAMES)
def test_metatensor_in_metatensor_out(name, kernel_calls):
    """MetaTensor logits and/or labels (plain, or collated by MONAI's DataLoader collate): the loss
    is a MetaTensor with MONAI's meta, and gradients flow through it."""
    from monai.data import MetaTensor, list_data_collate

    x, lab, _, _ = data((2, 3, 5, 6, 4), 81)
    batch = list_data_collate([{"x": MetaTensor(x[b], meta={"filename_or_obj": f"x{b}"}),
                                "l": MetaTensor(lab[b], affine=torch.eye(4) * 2, meta={"filename_or_obj": f"l{b}"})}
                               for b in range(2)])
    act = {} if name == "FocalLoss" else dict(softmax=True)
    pairs = [(x, MetaTensor(lab, affine=torch.eye(4) * 3)), (MetaTensor(x, affine=torch.eye(4) * 5), MetaTensor(lab)),
             (batch["x"], batch["l"]), (x, batch["l"])]
    for ib in (True, False):
        kw = dict(to_onehot_y=True, include_background=ib, **act)
        for xi, ti in pairs:
            theirs, ours = both(name, kw)
            v_t, g_t, _ = evaluate(theirs, xi, ti)
            v_o, g_o, _ = evaluate(ours, xi, ti)
            _same_meta(v_o, v_t)
            assert_close(v_o.as_tensor(), v_t.as_tensor(), F32[0], name)
            assert torch.allclose(g_o.double(), g_t.double(), rtol=1e-5, atol=1e-9)
    assert kernel_calls


@pytest.mark.parametrize("name", NAMES)
def test_absent_classes(name):
    """A class absent from the whole batch, and a batch of background only: MONAI's smoothing
    terms and GeneralizedDiceLoss's infinite-weight rule (weights of absent classes = the largest
    finite weight, all zero when no class is present)."""
    x, _, _, _ = data((2, 4, 5, 6, 4), 91)
    lab = torch.randint(0, 3, (2, 1, 5, 6, 4), generator=torch.Generator().manual_seed(3))   # class 3 absent
    for t in (lab, torch.zeros_like(lab)):
        for ib, batch, red in itertools.product((True, False), (False, True), ("mean", "none", "sum")):
            if name == "DiceCELoss" and red == "none":
                continue
            kw = dict(to_onehot_y=True, include_background=ib, reduction=red)
            if name != "FocalLoss":
                kw.update(softmax=True, batch=batch)
            elif batch:
                continue
            compare(name, kw, x, t, F32 if "Focal" in name else F64)
