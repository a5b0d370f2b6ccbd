"""The CPU loss kernels' two float paths: AVX2+FMA (chosen at run time) and the portable scalar one.

Both paths' elementary functions (exp, log, log1p, sigmoid) are bounded against float64 over the
whole float range, subnormals and special values included; the fused losses agree between the
paths and with the float64 reference on awkward shapes, views, dtypes and labels, and each path
gives identical results for any thread count.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import medseg_fast  # noqa: E402
from medseg_fast import _ext  # noqa: E402
from medseg_fast.losses import DiceFocalLoss, DiceLoss, FocalLoss  # noqa: E402
from medseg_fast.reference import losses as ref  # noqa: E402

_C = _ext.cpu_module()


def _simd_available() -> bool:
    before = _C._losses_simd_mode(-1)
    available = bool(_C._losses_simd_mode(1))
    _C._losses_simd_mode(before)
    return available


SIMD = _simd_available()
PATHS = ["scalar", pytest.param("simd", marks=pytest.mark.skipif(not SIMD, reason="CPU without AVX2+FMA"))]


@pytest.fixture(params=PATHS)
def path(request):
    before = _C._losses_simd_mode(-1)
    _C._losses_simd_mode(1 if request.param == "simd" else 0)
    assert _C._losses_simd_mode(-1) == (1 if request.param == "simd" else 0)
    yield request.param
    _C._losses_simd_mode(before)


# ----------------------------------------------------------------------------------------------
# Elementary functions

_FN = _C.LossMathFn.__members__   # "exp", "log", "log1p", "sigmoid"


def _apply(name: str, simd: bool, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    assert _C._losses_math(_FN[name], simd, x.ctypes.data, y.ctypes.data, x.size)
    return y


def _ordered(a: np.ndarray) -> np.ndarray:
    """float32 -> integers in the same order, consecutive floats one apart (ulp distances)."""
    i = a.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def _all_floats(step: int = 1009) -> np.ndarray:
    """Every step-th float32 bit pattern (both signs, subnormals, normals) plus edge values."""
    x = np.arange(0, 2**32, step, dtype=np.uint64).astype(np.uint32).view(np.float32)
    fi = np.finfo(np.float32)
    edges = np.array([0.0, -0.0, fi.tiny, -fi.tiny, fi.smallest_subnormal, fi.max, -fi.max, 1.0, -1.0,
                      88.72283, 88.72284, 89.0, -87.33655, -103.27893, -103.97208, -104.0, 1e-30, 7e-46],
                     dtype=np.float32)
    return np.concatenate([x[np.isfinite(x)], edges])


_REFERENCE = {
    "exp": (lambda x: np.exp(x), lambda x: x < 100),
    "log": (lambda x: np.log(x), lambda x: x > 0),
    "log1p": (lambda x: np.log1p(x), lambda x: (x >= 0) & (x <= 1)),
    "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)), lambda x: np.ones(x.shape, bool)),
}
_MAX_ULP = {"exp": 1, "log": 1, "log1p": 2, "sigmoid": 2}


@pytest.mark.parametrize("name", list(_FN))
@pytest.mark.parametrize("simd", [False, pytest.param(True, marks=pytest.mark.skipif(not SIMD, reason="no AVX2"))])
def test_elementary_functions_within_ulps_of_float64(name, simd):
    f64, domain = _REFERENCE[name]
    x = _all_floats()
    x = x[domain(x)]
    with np.errstate(over="ignore", under="ignore"):
        expected = f64(x.astype(np.float64)).astype(np.float32)   # correctly rounded to float32 (nearly)
    got = _apply(name, simd, x)
    ulps = np.abs(_ordered(got) - _ordered(expected))
    worst = int(ulps.argmax())
    assert ulps.max() <= _MAX_ULP[name], (name, float(x[worst]), float(got[worst]), float(expected[worst]))


@pytest.mark.parametrize("simd", [False, pytest.param(True, marks=pytest.mark.skipif(not SIMD, reason="no AVX2"))])
def test_elementary_functions_special_values(simd):
    inf, nan = np.float32(np.inf), np.float32(np.nan)
    e = _apply("exp", simd, np.array([nan, inf, -inf, 89.0, 1e30, -104.0, -1e30, 0.0, -0.0], np.float32))
    assert np.isnan(e[0])
    np.testing.assert_array_equal(e[1:], [inf, 0, inf, inf, 0, 0, 1, 1])
    sub = np.float32(1e-40)
    lg = _apply("log", simd, np.array([nan, inf, 0.0, -0.0, -1.0, -inf, sub, 1.0], np.float32))
    assert np.isnan(lg[0])
    assert lg[1] == inf
    assert lg[2] == -inf
    assert lg[3] == -inf
    assert np.isnan(lg[4])
    assert np.isnan(lg[5])
    assert lg[6] == np.float32(np.log(np.float64(sub)))
    assert lg[7] == 0.0
    sg = _apply("sigmoid", simd, np.array([nan, inf, -inf, 0.0, -200.0, 200.0], np.float32))
    assert np.isnan(sg[0])
    np.testing.assert_array_equal(sg[1:], [1.0, 0.0, 0.5, 0.0, 1.0])
    lp = _apply("log1p", simd, np.array([0.0, 1e-45, 1e-30, 1.0], np.float32))
    np.testing.assert_array_equal(lp, np.log1p(np.array([0.0, 1e-45, 1e-30, 1.0], np.float64)).astype(np.float32))


@pytest.mark.skipif(not SIMD, reason="CPU without AVX2+FMA")
@pytest.mark.parametrize("name", list(_FN))
def test_simd_and_scalar_functions_agree(name):
    x = _all_floats(step=65537)
    x = x[_REFERENCE[name][1](x)]
    a, b = _apply(name, True, x), _apply(name, False, x)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    assert np.abs(_ordered(a[ok]) - _ordered(b[ok])).max() <= 1


# ----------------------------------------------------------------------------------------------
# Fused losses on each path


def _data(rng, shape, dtype=torch.float32, label_dtype=torch.int64, scale=3.0):
    B, K, *sp = shape
    x = torch.from_numpy(rng.normal(0.0, scale, size=shape)).to(dtype)
    y = torch.from_numpy(rng.integers(0, max(K, 2), size=(B, 1, *sp))).to(label_dtype)
    return x, y


def _value_grad(loss, x, y):
    xx = x.detach().clone().requires_grad_(True)
    val = loss(xx, y)
    (g,) = torch.autograd.grad(val, xx)
    return val.detach().double(), g.double()


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


CONFIGS = [
    {},
    {"focal_activation": "sigmoid"},
    {"include_background": False},
    {"include_background": False, "focal_activation": "sigmoid"},
    {"softmax": False},
    {"softmax": False, "focal_activation": "sigmoid"},
    {"gamma": 1.5},
    {"gamma": 1.0},
    {"gamma": 0.0, "focal_activation": "sigmoid"},
    {"gamma": 0.5, "focal_activation": "sigmoid", "alpha": 0.25},
    {"squared_pred": True, "batch": True},
    {"squared_pred": True, "focal_activation": "sigmoid", "softmax": False},
    {"lambda_focal": 0.0},
]
SHAPES = [(2, 4, 9, 10, 11), (1, 3, 1, 1, 13), (3, 2, 17, 1, 5), (1, 5, 300), (2, 1, 7, 6, 5), (1, 20, 5, 6, 7)]


@pytest.mark.parametrize("kw", CONFIGS)
def test_paths_match_float64_reference(rng, path, kw):
    for shape in SHAPES:
        if shape[1] == 1 and (kw.get("softmax", True) or not kw.get("include_background", True)):
            continue   # one channel: sigmoid Dice only (softmax over one class is constant)
        x, y = _data(rng, shape)
        ours = DiceFocalLoss(**kw)
        v, g = _value_grad(ours, x, y)
        rv, rg = _value_grad(lambda t, yy, kw=kw: ref.dice_focal_loss(t, yy, **kw), x.double(), y)
        assert abs(float(v - rv)) <= 2e-6 * max(abs(float(rv)), 1e-3), (shape, float(v), float(rv))
        assert _rel(g, rg) < 2e-5, (shape, _rel(g, rg))


@pytest.mark.skipif(not SIMD, reason="CPU without AVX2+FMA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("label_dtype", [torch.uint8, torch.int16, torch.int32, torch.int64, torch.float32])
def test_simd_matches_scalar(rng, dtype, label_dtype):
    x, y = _data(rng, (2, 4, 13, 7, 29), dtype=dtype, label_dtype=label_dtype)
    y[0, 0, 3] = 255
    before = _C._losses_simd_mode(-1)
    try:
        for kw in ({}, {"focal_activation": "sigmoid"}, {"include_background": False, "ignore_index": 255},
                   {"softmax": False, "focal_activation": "sigmoid", "ignore_index": 255}):
            if "ignore_index" not in kw:
                yk = y.clone()
                yk[yk == 255] = 1
            else:
                yk = y
            out = []
            for mode in (1, 0):
                _C._losses_simd_mode(mode)
                out.append(_value_grad(DiceFocalLoss(**kw), x, yk))
            (v1, g1), (v0, g0) = out
            assert abs(float(v1 - v0)) <= 1e-6 * abs(float(v0)), kw
            # 16-bit gradients may differ by one rounding of the output dtype
            tol = {torch.float32: 2e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]
            assert _rel(g1, g0) <= tol, (kw, _rel(g1, g0))
    finally:
        _C._losses_simd_mode(before)


def test_paths_on_views_and_ignored_voxels(rng, path):
    x, y = _data(rng, (2, 3, 12, 14, 10))
    y[:, :, ::2] = 7
    # channels-last, a transposed spatial view, and a strided slice
    views = [x.permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3), x.transpose(2, 4), x[:, :, ::2, 1:, ::3]]
    targets = [y, y.transpose(2, 4), y[:, :, ::2, 1:, ::3]]
    for xv, yv in zip(views, targets):
        for kw in ({"ignore_index": 7}, {"ignore_index": 7, "focal_activation": "sigmoid"}):
            v, g = _value_grad(DiceFocalLoss(**kw), xv, yv)
            rv, rg = _value_grad(lambda t, yy, kw=kw: ref.dice_focal_loss(t, yy, **kw), xv.double(), yv)
            assert abs(float(v - rv)) <= 2e-6 * abs(float(rv))
            assert _rel(g, rg) < 2e-5
            assert float(g[(yv == 7).expand_as(g)].abs().max()) == 0.0   # ignored voxels: no gradient


def test_paths_dice_and_focal_alone(rng, path):
    x, y = _data(rng, (2, 4, 6, 7, 9))
    for loss, reference in (
        (DiceLoss(), lambda t, yy: ref.dice_focal_loss(t, yy, lambda_focal=0.0)),
        (FocalLoss(), lambda t, yy: ref.dice_focal_loss(t, yy, lambda_dice=0.0)),
        (FocalLoss(softmax=False), lambda t, yy: ref.dice_focal_loss(t, yy, softmax=False, lambda_dice=0.0)),
    ):
        v, g = _value_grad(loss, x, y)
        rv, rg = _value_grad(reference, x.double(), y)
        assert abs(float(v - rv)) <= 2e-6 * abs(float(rv))
        assert _rel(g, rg) < 2e-5


def test_paths_thread_count_independent(rng, path):
    x, y = _data(rng, (2, 3, 23, 30, 31))
    before = medseg_fast.get_num_threads()
    try:
        for kw in ({}, {"focal_activation": "sigmoid"}):
            results = []
            for n in (1, 2, 3):
                medseg_fast.set_num_threads(n)
                results.append(_value_grad(DiceFocalLoss(**kw), x, y))
            for v, g in results[1:]:
                assert torch.equal(v, results[0][0])
                assert torch.equal(g, results[0][1])
    finally:
        medseg_fast.set_num_threads(before)


def test_paths_reject_bad_labels(rng, path):
    x, y = _data(rng, (1, 3, 5, 6, 7))
    y[0, 0, 2, 3, 4] = 3
    with pytest.raises(ValueError, match=r"target must hold class labels in \[0, 3\).*1 voxel"):
        DiceFocalLoss()(x, y)


def test_env_var_forces_scalar_path():
    code = "from medseg_fast import _ext; print(_ext.cpu_module()._losses_simd_mode(-1))"
    env = dict(os.environ, MEDSEG_LOSSES_SIMD="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_paths_large_and_nonfinite_logits(rng, path):
    # logits beyond +-60 take the shifted softmax (and a separate exp(-|x|)) for their 8 voxels
    x, y = _data(rng, (2, 4, 5, 6, 17))
    x[0, 1, 2, 3, 4] = 95.0
    x[0, 2, 2, 3, 5] = -130.0
    x[1, 0, 4, 5, 16] = 61.0
    x[1, 3, 0, 0, 0] = -1.0e4
    for kw in ({}, {"focal_activation": "sigmoid"}, {"softmax": False, "focal_activation": "sigmoid"},
               {"include_background": False, "focal_activation": "sigmoid"}):
        v, g = _value_grad(DiceFocalLoss(**kw), x, y)
        rv, rg = _value_grad(lambda t, yy, kw=kw: ref.dice_focal_loss(t, yy, **kw), x.double(), y)
        assert torch.isfinite(v)
        assert bool(torch.isfinite(g).all())
        assert abs(float(v - rv)) <= 2e-6 * abs(float(rv)), kw
        assert _rel(g, rg) < 2e-5, kw
    # a NaN logit makes the loss NaN (never a silently finite value)
    xn = x.clone()
    xn[1, 2, 3, 3, 3] = float("nan")
    for kw in ({}, {"focal_activation": "sigmoid"}, {"softmax": False}, {"lambda_focal": 0.0}):
        assert torch.isnan(DiceFocalLoss(**kw)(xn, y)), kw
