"""medseg_fast.monai transforms against the installed MONAI classes of the same names.

Every class (array and dictionary form) is run next to MONAI's on the same input: random inputs
of awkward shapes (1-3 channels, odd and prime sizes, 2-D and 3-D, float32/float64/int16/uint8,
float label maps), MONAI's options and defaults, and the real CT / label volumes in tests/data.
Each comparison checks the output type, dtype, device, shape and values (labels identical,
floats within 1e-6 relative), the MetaTensor affine, meta data and applied operations, the
warnings MONAI's own code gives, that an input MONAI rejects is rejected with the same exception
type, and that our call leaves its input unchanged (MONAI's post transforms write into a torch or
numpy input, so MONAI always gets a copy).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
mt = pytest.importorskip("monai.transforms")
pytest.importorskip("skimage")
from monai.data import MetaTensor, set_track_meta  # noqa: E402
from scipy import ndimage  # noqa: E402

import medseg_fast.monai as mm  # noqa: E402
from conftest import DATA  # noqa: E402

INTENSITY = ["ScaleIntensityRange", "ScaleIntensityRangePercentiles", "NormalizeIntensity", "ScaleIntensity"]
POST = ["KeepLargestConnectedComponent", "RemoveSmallObjects", "FillHoles"]
ALL = INTENSITY + POST + ["Spacing"]


# ----------------------------------------------------------------------------- comparison helpers
def _same_obj(a, b, where="") -> None:
    """Recursive equality of meta data / applied-operation records (tensors, arrays, dicts, lists)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor), where
        a_, b_ = a.as_tensor() if isinstance(a, MetaTensor) else a, b.as_tensor() if isinstance(b, MetaTensor) else b
        assert a_.dtype == b_.dtype and a_.shape == b_.shape and torch.equal(a_.cpu(), b_.cpu()), where
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(map(str, a)) == set(map(str, b)), (where, set(a) ^ set(b))
        for k in a:
            if str(k) == "id":        # applied operations record the transform object's id()
                continue
            _same_obj(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _same_obj(u, v, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b)), (where, a, b)


def _host(x):
    """A tensor as a numpy array (bfloat16, which numpy lacks, as float32: exact)."""
    if not isinstance(x, torch.Tensor):
        return x
    x = x.detach().cpu()
    return (x.float() if x.dtype == torch.bfloat16 else x).numpy()


def assert_same(out, ref, *, exact: bool) -> None:
    """Ours (`out`) against MONAI's (`ref`): type, dtype, device, shape, values, meta data."""
    assert type(out) is type(ref), (type(out), type(ref))
    if isinstance(ref, dict):
        assert list(out) == list(ref)
        for k in ref:
            if isinstance(ref[k], (torch.Tensor, np.ndarray)):
                assert_same(out[k], ref[k], exact=exact)
            else:
                _same_obj(out[k], ref[k], str(k))
        return
    assert out.dtype == ref.dtype and tuple(out.shape) == tuple(ref.shape)
    if isinstance(ref, torch.Tensor):
        assert out.device == ref.device
    o = out.as_tensor() if isinstance(out, MetaTensor) else out
    r = ref.as_tensor() if isinstance(ref, MetaTensor) else ref
    o, r = _host(o), _host(r)
    if exact or not np.issubdtype(r.dtype, np.floating) or r.dtype == np.float16:
        np.testing.assert_array_equal(o, r)
    else:
        finite = r[np.isfinite(r)]
        scale = float(np.abs(finite).max()) if finite.size else 1.0
        np.testing.assert_allclose(o, r, rtol=1e-6, atol=1e-6 * max(scale, 1e-30), equal_nan=True)
    if isinstance(ref, MetaTensor):
        _same_obj(out.affine, ref.affine, "affine")
        _same_obj(dict(out.meta), dict(ref.meta), "meta")
        _same_obj(out.applied_operations, ref.applied_operations, "applied_operations")
        assert out.is_batch == ref.is_batch


def _assert_unchanged(x, snap) -> None:
    if isinstance(x, dict):
        assert list(x) == list(snap)
        for k in x:
            _assert_unchanged(x[k], snap[k])
        return
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        return
    assert type(x) is type(snap) and x.dtype == snap.dtype and x.shape == snap.shape
    xv = x.as_tensor() if isinstance(x, MetaTensor) else x
    sv = snap.as_tensor() if isinstance(snap, MetaTensor) else snap
    xv, sv = _host(xv), _host(sv)
    np.testing.assert_array_equal(xv, sv, err_msg="the input was modified")
    if isinstance(x, MetaTensor):
        _same_obj(dict(x.meta), dict(snap.meta), "input meta")
        _same_obj(x.applied_operations, snap.applied_operations, "input applied_operations")


def _messages(records) -> list[str]:
    """The warnings MONAI's transform code gives (plain Warning/UserWarning; not skimage's
    FutureWarning about its own parameters, which our kernels never reach)."""
    return sorted({str(w.message) for w in records if w.category in (Warning, UserWarning)})


def _call(transform, x):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            return transform(x), None, _messages(rec)
        except Exception as e:  # noqa: BLE001 - any exception MONAI raises must be raised by ours
            return None, e, _messages(rec)


def compare(name: str, kwargs: dict, x, *, exact: bool = False, mod=None):
    """Run MONAI's `name(**kwargs)` on a copy of `x` and ours on `x`; check they agree."""
    mod = mm if mod is None else mod
    ref, ref_err, ref_warn = _call(getattr(mt, name)(**kwargs), copy.deepcopy(x))
    snap = copy.deepcopy(x)
    ours = getattr(mod, name)(**kwargs)
    assert isinstance(ours, getattr(mt, name)), "not a subclass of MONAI's class"
    out, err, our_warn = _call(ours, x)
    _assert_unchanged(x, snap)
    if ref_err is not None:
        assert err is not None, f"MONAI raised {ref_err!r}, ours returned"
        assert isinstance(err, type(ref_err)) or (isinstance(err, (ValueError, TypeError)) and
                                                  isinstance(ref_err, (ValueError, TypeError, RuntimeError))), \
            (err, ref_err)
        return None
    if err is not None:
        raise AssertionError(f"ours raised {err!r}, MONAI returned") from err
    assert our_warn == ref_warn
    assert_same(out, ref, exact=exact)
    return out


# ----------------------------------------------------------------------------- inputs
AFFINE = torch.tensor([[0.0, 0.0, -1.5, 20.0], [0.0, 0.7, 0.0, -3.0], [2.5, 0.0, 0.0, 7.0], [0, 0, 0, 1]],
                      dtype=torch.float64)


def as_kind(arr: np.ndarray, kind: str):
    """numpy / torch / MetaTensor (non-diagonal affine, meta data, one applied operation)."""
    if kind == "numpy":
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if kind == "torch":
        return t
    sr = arr.ndim - 1
    aff = AFFINE if sr == 3 else torch.tensor([[0.0, 1.25, 4.0], [0.8, 0.0, -2.0], [0, 0, 1]], dtype=torch.float64)
    m = MetaTensor(t, affine=aff.clone(), meta={"filename_or_obj": "case_007.nii.gz", "patient": "P1"})
    flipped = mt.Flip(spatial_axis=0)(m)          # a MetaTensor with an applied operation, as in a pipeline
    if kind == "meta":
        return flipped
    raise ValueError(kind)


KINDS = ["numpy", "torch", "meta"]
SHAPES = [(1, 7, 11), (2, 13, 5, 17), (3, 1, 19, 3), (1, 31, 29, 3), (2, 23, 2), (1, 11, 13, 7)]


def intensity_input(rng, shape, dtype) -> np.ndarray:
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, shape).astype(np.uint8)
    if np.dtype(dtype) == np.int16:
        return rng.integers(-1024, 3072, shape).astype(np.int16)
    x = rng.normal(40.0, 300.0, shape)
    x.reshape(-1)[:: 7] = 0.0          # zeros for nonzero=True
    return x.astype(dtype)


def label_map(rng, shape, n_labels: int, sigma: float = 1.2, speckle: float = 0.02) -> np.ndarray:
    """An integer label map (spatial shape) of smooth blobs with holes and single-voxel specks."""
    f = ndimage.gaussian_filter(rng.normal(size=shape), sigma) if min(shape) > 1 else rng.normal(size=shape)
    g = ndimage.gaussian_filter(rng.normal(size=shape), sigma) if min(shape) > 1 else rng.normal(size=shape)
    lab = np.where(f > np.quantile(f, 0.45), 1 + np.digitize(g, np.quantile(g, np.linspace(0, 1, n_labels + 1)[1:-1])), 0)
    specks = rng.random(shape) < speckle
    lab[specks] = rng.integers(0, n_labels + 1, int(specks.sum()))
    return lab.astype(np.int64)


def one_hot(lab: np.ndarray, n: int, dtype) -> np.ndarray:
    return (lab[None] == np.arange(n).reshape((n,) + (1,) * lab.ndim)).astype(dtype)


# ----------------------------------------------------------------------------- intensity: random inputs
INTENSITY_CONFIGS = {
    "ScaleIntensityRange": [
        dict(a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True),
        dict(a_min=-57.5, a_max=300.0),
        dict(a_min=0, a_max=255, b_min=-1.0, b_max=1.0, dtype=None),
        dict(a_min=10.0, a_max=-10.0, b_min=0.0, b_max=1.0, clip=True, dtype=np.float64),
        dict(a_min=-1.0, a_max=1.0, b_min=0.0, b_max=None, clip=True),
        dict(a_min=0.0, a_max=1.0, b_min=1.0, b_max=0.0, clip=True, dtype=torch.float64),
        dict(a_min=5.0, a_max=5.0, b_min=0.0, b_max=1.0),        # MONAI's a_min == a_max warning
        dict(a_min=-100, a_max=100, b_min=0, b_max=255, clip=True, dtype=np.uint8),
    ],
    "ScaleIntensityRangePercentiles": [
        dict(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True),
        dict(lower=0, upper=100, b_min=-1.0, b_max=1.0),
        dict(lower=10, upper=90, b_min=0.0, b_max=200.0, relative=True),
        dict(lower=25, upper=75, b_min=None, b_max=None, channel_wise=True),
        dict(lower=5, upper=95, b_min=0.0, b_max=1.0, clip=True, channel_wise=True, dtype=None),
        dict(lower=5, upper=95, b_min=None, b_max=1.0, relative=True),      # MONAI: ValueError
    ],
    "NormalizeIntensity": [
        {}, dict(nonzero=True), dict(channel_wise=True), dict(nonzero=True, channel_wise=True),
        dict(subtrahend=100.0, divisor=50.0), dict(subtrahend=0, divisor=0), dict(dtype=None),
        dict(dtype=np.float64), dict(subtrahend=np.float32(3.5)),
        dict(subtrahend=[1.0, 2.0, 3.0], divisor=[1.0, 2.0, 4.0], channel_wise=True),  # C != 3: ValueError
    ],
    "ScaleIntensity": [
        {}, dict(minv=-1.0, maxv=1.0), dict(minv=None, maxv=None, factor=0.5), dict(channel_wise=True),
        dict(minv=0.0, maxv=None), dict(dtype=None), dict(dtype=np.float64), dict(minv=None, maxv=None),
        dict(minv=2, maxv=-3, dtype=torch.float64),
    ],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "index"), [(n, i) for n, c in INTENSITY_CONFIGS.items() for i in range(len(c))])
def test_intensity_random(name, index, kind, rng):
    kwargs = INTENSITY_CONFIGS[name][index]
    for shape in SHAPES:
        for dtype in (np.float32, np.float64, np.int16, np.uint8):
            compare(name, kwargs, as_kind(intensity_input(rng, shape, dtype), kind))


@pytest.mark.parametrize("name", INTENSITY)
def test_intensity_constant_and_tiny(name):
    kwargs = INTENSITY_CONFIGS[name][0]
    for arr in (np.full((1, 4, 5, 3), 7.0, np.float32), np.zeros((2, 3, 1), np.float64), np.ones((1, 1, 1), np.float32),
                np.full((1, 5, 6), -3, np.int16)):
        for kind in KINDS:
            compare(name, kwargs, as_kind(arr, kind))


@pytest.mark.parametrize("name", INTENSITY)
def test_intensity_strided_view(name, rng):
    """Transposed and sliced views (not contiguous) give MONAI's results."""
    base = torch.from_numpy(intensity_input(rng, (2, 17, 9, 12), np.float32))
    for view in (base.permute(0, 3, 1, 2), base[:, ::2, 1:, ::3], base.flip(1)):
        compare(name, INTENSITY_CONFIGS[name][0], view)
        compare(name, INTENSITY_CONFIGS[name][0], MetaTensor(view, affine=AFFINE.clone()))


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.float64])
def test_percentiles_above_a_million(dtype, rng):
    """MONAI switches from torch.quantile to numpy.percentile above 10^6 voxels (our one-pass path)."""
    arr = intensity_input(rng, (1, 101, 103, 97), dtype)
    for kw in (dict(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True),
               dict(lower=2, upper=98, b_min=-1.0, b_max=1.0, relative=True, dtype=None)):
        compare("ScaleIntensityRangePercentiles", kw, as_kind(arr, "meta"))
    compare("ScaleIntensityRangePercentiles", dict(lower=1, upper=99, b_min=0.0, b_max=1.0, channel_wise=True),
            torch.from_numpy(np.concatenate([arr, arr[:, ::-1] * 2]).copy()))
    if np.dtype(dtype).kind == "f":           # a NaN: numpy.percentile gives NaN bounds, so does ours
        bad = arr.copy()
        bad[0, 50, 51, 52] = np.nan
        compare("ScaleIntensityRangePercentiles", dict(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0),
                as_kind(bad, "meta"))
        bad[0, 1, 2, 3] = np.inf
        bad[0, 50, 51, 52] = 0.0
        compare("ScaleIntensityRangePercentiles", dict(lower=0.0, upper=100.0, b_min=0.0, b_max=1.0),
                as_kind(bad, "meta"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int16])
def test_normalize_nonzero_channel_wise_bitwise(dtype, rng):
    """nonzero / channel_wise: bit for bit MONAI's values, -0.0 (left alone as a zero) included."""
    a = rng.normal(50.0, 300.0, (3, 17, 19, 11))
    a[a < 0] = 0.0
    a[0, :3] = -0.0
    a[2] = 0.0                                        # an all-zero channel: returned as it is
    x = MetaTensor(torch.from_numpy(a).to(dtype), affine=AFFINE.clone())
    for kw in (dict(nonzero=True), dict(channel_wise=True), dict(nonzero=True, channel_wise=True),
               dict(nonzero=True, dtype=None), dict(nonzero=True, subtrahend=3.0, divisor=0.0)):
        out = compare("NormalizeIntensity", kw, x)
        ref = mt.NormalizeIntensity(**kw)(x.clone())
        assert torch.equal(out.as_tensor(), ref.as_tensor())
        assert torch.equal(torch.signbit(out.as_tensor()), torch.signbit(ref.as_tensor()))


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.int8, np.int32, np.int64])
def test_scale_intensity_range_integer_input(dtype, rng):
    """Integer input: MONAI's ``x - a_min`` stays in the integer dtype (wrapping near the dtype's
    limits) before the true division; the results agree bit for bit, wrap included."""
    info = np.iinfo(dtype)
    a = rng.integers(max(info.min, -40000), min(info.max, 40000), (1, 23, 17, 5), endpoint=True).astype(dtype)
    a.reshape(-1)[:4] = [info.min, info.max, info.max - 1, 0]
    for kw in (dict(a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True), dict(a_min=-57.5, a_max=300),
               dict(a_min=10, a_max=200, dtype=None), dict(a_min=3, a_max=-4, b_min=1.0, b_max=-1.0, clip=True,
                                                        dtype=np.float64)):
        for kind, arr in ((k, v) for k in KINDS for v in (a, np.clip(a, -900, 900).astype(dtype))):
            x = as_kind(arr, kind)                 # with the dtype's limits (wraps) and without
            out = compare("ScaleIntensityRange", kw, x)
            ref = mt.ScaleIntensityRange(**kw)(copy.deepcopy(x))
            np.testing.assert_array_equal(_host(out), _host(ref))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_percentiles_below_a_million_bitwise(dtype, rng):
    """Below 10^6 voxels MONAI sorts (torch.quantile); our selection gives the same bits, with ties,
    infinities, NaN (MONAI's NaN result) and zero neighbours (MONAI's path) included."""
    from medseg_fast.monai.transforms import _quantiles_like_torch

    for n in (1, 2, 3, 7, 100, 1001, 65537):
        v = rng.normal(0.0, 100.0, n)
        if n % 2:
            v = np.round(v / 10.0)                      # many ties
        x = torch.from_numpy(v).to(dtype)
        for qs in ((0.0, 100.0), (0.5, 99.5), (10.0, 90.0), (float(rng.uniform(0, 100)), 33.3)):
            got = _quantiles_like_torch(x, qs)
            for q, value in zip(qs, got or ()):
                ref = torch.quantile(x, torch.as_tensor(np.float64(q) / 100.0, dtype=dtype))
                assert value.dtype == ref.dtype and value.shape == ref.shape and torch.equal(value, ref), (n, q)
    img = rng.normal(0.0, 100.0, (1, 31, 17, 9))
    img[0, 0, 0, :3] = [np.inf, -np.inf, 0.0]
    for arr in (img, np.where(img > 50, np.nan, img), np.where(img > 0, 0.0, img), np.zeros((1, 4, 5))):
        for kw in (dict(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True), dict(lower=0, upper=100, b_min=-1,
                                                                                   b_max=1, channel_wise=True)):
            x = MetaTensor(torch.from_numpy(arr).to(dtype), affine=AFFINE.clone())
            compare("ScaleIntensityRangePercentiles", kw, x)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")             # a constant image: MONAI's a_min == a_max warning
                out = mm.ScaleIntensityRangePercentiles(**kw)(x.clone())
                ref = mt.ScaleIntensityRangePercentiles(**kw)(x.clone())
            assert torch.equal(torch.nan_to_num(out.as_tensor(), 7.0), torch.nan_to_num(ref.as_tensor(), 7.0))


def test_intensity_track_meta_off(rng):
    """With MONAI's set_track_meta(False), torch stays torch (and numpy becomes torch) as in MONAI."""
    arr = intensity_input(rng, (2, 9, 8, 7), np.float32)
    set_track_meta(False)
    try:
        for name in INTENSITY:
            for kind in KINDS:
                out = compare(name, INTENSITY_CONFIGS[name][0], as_kind(arr, kind))
                assert type(out) is torch.Tensor
    finally:
        set_track_meta(True)


# ----------------------------------------------------------------------------- post: random inputs
KLCC_CONFIGS = [
    {}, dict(applied_labels=[1]), dict(applied_labels=(1, 3), independent=False), dict(connectivity=1),
    dict(connectivity=2, num_components=2), dict(independent=False), dict(num_components=3, connectivity=1),
    dict(applied_labels=2, is_onehot=False), dict(is_onehot=True), dict(is_onehot=False), dict(connectivity=3),
    dict(applied_labels=[3, 1, 9], independent=True, num_components=2), dict(applied_labels=[2, 3], independent=False,
                                                                           connectivity=1, num_components=2),
]
RSO_CONFIGS = [
    {}, dict(min_size=3), dict(min_size=5, connectivity=2), dict(min_size=10, connectivity=3),
    dict(min_size=4, independent_channels=False), dict(min_size=6, by_measure=True),
    dict(min_size=6, by_measure=True, pixdim=0.5), dict(min_size=2, connectivity=None), dict(min_size=1),
    dict(min_size=7, independent_channels=False, connectivity=2), dict(min_size=3, pixdim=(1.0, 2.0)),
]
FH_CONFIGS = [
    {}, dict(connectivity=1), dict(connectivity=2), dict(applied_labels=[1]), dict(applied_labels=(2, 1)),
    dict(applied_labels=[1, 7]), dict(connectivity=3), dict(applied_labels=3, connectivity=1),
]
POST_CONFIGS = {"KeepLargestConnectedComponent": KLCC_CONFIGS, "RemoveSmallObjects": RSO_CONFIGS,
                "FillHoles": FH_CONFIGS}
POST_SHAPES = [(13, 17), (9, 7, 11), (1, 23, 19), (5, 2, 31), (29, 31)]


def post_inputs(rng, spatial):
    """Label maps (integer dtypes, float as MONAI/nnU-Net give, bool and 0/1 masks) and one-hot stacks."""
    lab = label_map(rng, spatial, 3)
    yield lab[None].astype(np.uint8)
    yield lab[None].astype(np.int16)
    yield lab[None].astype(np.float32)                     # float label map
    yield (lab[None] > 0).astype(np.uint8)                  # binary mask
    yield lab[None] == 2                                    # bool mask
    yield one_hot(lab, 4, np.float32)                       # one-hot, 4 channels
    yield one_hot(np.minimum(lab, 2), 3, np.uint8)           # one-hot, 3 channels, uint8
    yield (lab[None] > 0).astype(np.float64) * 0.5 + (lab[None] > 1) * 0.5    # 0 / 0.5 / 1 float mask


@pytest.mark.parametrize(("name", "index"), [(n, i) for n, c in POST_CONFIGS.items() for i in range(len(c))])
def test_post_random(name, index, rng):
    kwargs = POST_CONFIGS[name][index]
    for spatial in POST_SHAPES:
        for j, arr in enumerate(post_inputs(rng, spatial)):
            compare(name, kwargs, as_kind(arr, KINDS[(j + len(spatial)) % 3]), exact=True)


@pytest.mark.parametrize("name", POST)
def test_post_kinds_and_dtypes(name, rng):
    """Every input kind with every label dtype, 2-D and 3-D."""
    lab = label_map(rng, (11, 13, 9), 4)
    lab2 = label_map(rng, (17, 23), 2)
    for arr in (lab, lab2):
        for dtype in (np.uint8, np.int16, np.int32, np.int64, np.float32, np.float64):
            for kind in KINDS:
                kw = dict(min_size=4) if name == "RemoveSmallObjects" else {}
                compare(name, kw, as_kind(arr[None].astype(dtype), kind), exact=True)


def test_klcc_ties_and_counts():
    """Equal-sized components: MONAI's choice (argsort of the size array) is followed exactly."""
    img = np.zeros((1, 9, 9), np.uint8)
    img[0, ::2, ::2] = 1                           # 25 single-voxel components of value 1
    img[0, 1, 1] = 2
    img[0, 5:7, 5:7] = 3
    for k in (1, 2, 3, 7, 24, 25, 26):
        for kw in (dict(num_components=k, connectivity=1), dict(num_components=k, connectivity=1, independent=False)):
            compare("KeepLargestConnectedComponent", kw, torch.from_numpy(img), exact=True)
            compare("KeepLargestConnectedComponent", kw, one_hot(img[0], 4, np.float32), exact=True)


def test_rso_per_value_rule():
    """MONAI: an integer label map (max > 1) is already labelled -- each value is one object, however
    many pieces; a 0/1 map is labelled into components. skimage >= 0.26 (which MONAI's positional
    ``min_size`` reaches as ``max_size``) also removes objects of exactly min_size voxels."""
    img = np.zeros((1, 12, 12), np.int16)
    img[0, 0, 0:3] = 2
    img[0, 5, 0:3] = 2                             # value 2: two pieces of 3 voxels, 6 in all
    img[0, 9, 9:11] = 3                            # value 3: 2 voxels
    img[0, 8:11, 2:4] = 5                          # value 5: 6 voxels
    for min_size in (1, 2, 3, 4, 5, 6, 7):
        for kind in KINDS:
            compare("RemoveSmallObjects", dict(min_size=min_size), as_kind(img, kind), exact=True)
            compare("RemoveSmallObjects", dict(min_size=min_size), as_kind((img > 0).astype(np.uint8), kind),
                    exact=True)
            compare("RemoveSmallObjects", dict(min_size=min_size, independent_channels=False), as_kind(img, kind),
                    exact=True)
    out = mm.RemoveSmallObjects(min_size=4)(torch.from_numpy(img))
    assert int((out == 2).sum()) == 6 and int((out == 3).sum()) == 0     # the per-value rule itself


def test_rso_by_measure_meta():
    """by_measure uses the MetaTensor's pixdim (and pixdim= otherwise), as MONAI does."""
    img = np.zeros((1, 10, 9, 8), np.uint8)
    img[0, 1:3, 1:3, 1] = 1                       # 4 voxels
    img[0, 6:9, 5:8, 3:5] = 1                     # 18 voxels
    m = MetaTensor(torch.from_numpy(img), affine=torch.diag(torch.tensor([2.0, 1.5, 3.0, 1.0], dtype=torch.float64)))
    for min_size in (1, 30, 40, 80, 200):
        compare("RemoveSmallObjects", dict(min_size=min_size, by_measure=True), m, exact=True)
        compare("RemoveSmallObjects", dict(min_size=min_size, by_measure=True, pixdim=(2.0, 1.5, 3.0)), img,
                exact=True)
        compare("RemoveSmallObjects", dict(min_size=min_size, by_measure=True), img, exact=True)   # warns
        compare("RemoveSmallObjects", dict(min_size=min_size, by_measure=True, pixdim=0.0), img, exact=True)


def test_rso_constant_input_is_returned():
    for arr in (np.zeros((1, 5, 5), np.uint8), np.full((1, 4, 3, 2), 3.0, np.float32)):
        for kind in KINDS:
            x = as_kind(arr, kind)
            compare("RemoveSmallObjects", {}, x, exact=True)
            assert mm.RemoveSmallObjects()(x) is x and mt.RemoveSmallObjects()(x) is x


def test_fill_holes_nested_labels():
    """A label enclosing another label's region fills it (MONAI's rule; later labels see earlier fills)."""
    img = np.zeros((1, 9, 9), np.uint8)
    img[0, 1:8, 1:8] = 1
    img[0, 3:6, 3:6] = 2
    img[0, 4, 4] = 0
    img[0, 2, 2] = 0
    for kw in ({}, dict(applied_labels=[2]), dict(applied_labels=[1]), dict(applied_labels=[2, 1]),
               dict(connectivity=1)):
        for kind in KINDS:
            compare("FillHoles", kw, as_kind(img, kind), exact=True)
    out = mm.FillHoles()(img)                      # label 1 first: it encloses label 2 and both holes
    assert int((out == 1).sum()) == 49 and int((out == 2).sum()) == 0
    out = mm.FillHoles(applied_labels=[2])(img)     # label 2 only: its own hole
    assert int((out == 2).sum()) == 9 and int((out == 0).sum()) == 81 - 49 + 1


def test_fill_holes_default_connectivity_is_full():
    """MONAI's default connectivity is the full one (26 in 3-D): a diagonal gap closes the hole."""
    img = np.ones((1, 5, 5, 5), np.uint8)
    img[0, 2, 2, 2] = 0
    img[0, 1, 1, 1] = 0           # hole touches (2,2,2) only diagonally
    img[0, 0, 0, 0] = 0           # open to the border
    for kind in KINDS:
        compare("FillHoles", {}, as_kind(img, kind), exact=True)
        compare("FillHoles", dict(connectivity=1), as_kind(img, kind), exact=True)
    assert int(mm.FillHoles()(img)[0, 2, 2, 2]) == 0
    assert int(mm.FillHoles(connectivity=1)(img)[0, 2, 2, 2]) == 1


def test_post_strided_views(rng):
    lab = torch.from_numpy(label_map(rng, (14, 9, 16), 3)[None].astype(np.uint8))
    for view in (lab.permute(0, 3, 1, 2), lab[:, ::2, :, 1:], lab.flip(2)):
        for name in POST:
            kw = dict(min_size=3) if name == "RemoveSmallObjects" else {}
            compare(name, kw, view, exact=True)
        compare("RemoveSmallObjects", dict(min_size=3), view.numpy(), exact=True)


def test_post_edge_cases(rng):
    """Float applied labels, out-of-range labels, negative-stride numpy views, 1-D and 4-D spatial
    inputs, negative / non-binary values, odd min_size and connectivity values."""
    lab = label_map(rng, (9, 10, 11), 3)[None]
    small = rng.integers(0, 3, (1, 5, 4, 3, 6)).astype(np.uint8)
    line = rng.integers(0, 3, (1, 17)).astype(np.uint8)
    cases = [
        ("KeepLargestConnectedComponent", dict(applied_labels=[1.5, 2], independent=False), lab.astype(np.float32)),
        ("KeepLargestConnectedComponent", dict(applied_labels=[1.5, 2], independent=False),
         np.where(lab == 1, 1.5, lab).astype(np.float32)),
        ("KeepLargestConnectedComponent", dict(applied_labels=[1.5, 2]), lab.astype(np.float32)),
        ("KeepLargestConnectedComponent", dict(applied_labels=[300, 2], independent=False), lab.astype(np.uint8)),
        ("KeepLargestConnectedComponent", dict(applied_labels=[300, 2]), lab.astype(np.uint8)),
        ("KeepLargestConnectedComponent", dict(applied_labels=[2.0]), lab.astype(np.uint8)),
        ("KeepLargestConnectedComponent", dict(num_components=0), lab.astype(np.uint8)),
        ("KeepLargestConnectedComponent", dict(connectivity=0), lab.astype(np.uint8)),
        ("KeepLargestConnectedComponent", dict(connectivity=True), lab.astype(np.uint8)),
        ("KeepLargestConnectedComponent", {}, np.where(lab == 1, -1, lab).astype(np.int32)),
        ("FillHoles", dict(applied_labels=[1, 2]),
         np.stack([lab[0] == 0, lab[0] == 1, (lab[0] == 2) * 2]).astype(np.float32)),     # non-0/1 one-hot
        ("FillHoles", {}, np.where(lab == 1, 1000, lab).astype(np.int32)),
        ("FillHoles", {}, np.where(lab == 1, -1, lab).astype(np.int32)),
        ("FillHoles", dict(connectivity=0), lab.astype(np.uint8)),
        ("RemoveSmallObjects", dict(min_size=3), np.where(lab == 1, 0.3, lab).astype(np.float32)),
        ("RemoveSmallObjects", dict(min_size=3), np.where(lab == 1, -0.5, lab).astype(np.float32)),
        ("RemoveSmallObjects", dict(min_size=3.5), lab.astype(np.uint8)),
        ("RemoveSmallObjects", dict(min_size=3.5), (lab > 0).astype(np.uint8)),
        ("RemoveSmallObjects", dict(min_size=0), (lab > 0).astype(np.uint8)),
        ("RemoveSmallObjects", dict(min_size=-1), lab.astype(np.uint8)),
        ("RemoveSmallObjects", dict(min_size=3, connectivity=True), lab.astype(np.uint8)),
    ]
    for name in POST:
        kw = dict(min_size=2) if name == "RemoveSmallObjects" else {}
        cases += [(name, kw, lab.astype(np.uint8)[:, ::-1]), (name, kw, (lab > 0)[:, :, ::-2]),
                  (name, kw, small), (name, kw, line)]
    for name, kw, x in cases:
        for kind in ("numpy", "torch"):
            compare(name, kw, x if kind == "numpy" else torch.from_numpy(np.ascontiguousarray(x)), exact=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_intensity_half_precision(dtype, rng):
    x = torch.from_numpy(intensity_input(rng, (2, 9, 8, 7), np.float32)).to(dtype)
    for name in INTENSITY:
        for kw in INTENSITY_CONFIGS[name][:3] + [dict(INTENSITY_CONFIGS[name][0], dtype=None)]:
            compare(name, kw, x)
            compare(name, kw, MetaTensor(x, affine=AFFINE.clone()))


# ----------------------------------------------------------------------------- real volumes
@pytest.fixture(scope="module")
def ct():
    """The CT chest crop (int16 HU) and its tumour label as MONAI's LoadImage gives them (full meta)."""
    load = mt.LoadImage(image_only=True, ensure_channel_first=True, dtype=None, reader="NibabelReader")
    return load(str(DATA / "ct_chest_lung2_crop_hu.nii.gz")), load(str(DATA / "ct_chest_lung2_crop_tumor_label.nii.gz"))


@pytest.fixture(scope="module")
def atlas():
    load = mt.LoadImage(image_only=True, ensure_channel_first=True, dtype=None, reader="NibabelReader")
    return load(str(DATA / "dk_atlas_mni_1mm.nii.gz"))


CT_CONFIGS = [
    ("ScaleIntensityRange", dict(a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True)),
    ("ScaleIntensityRange", dict(a_min=-175, a_max=250, b_min=0.0, b_max=1.0, clip=True)),
    ("ScaleIntensityRangePercentiles", dict(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True)),
    ("NormalizeIntensity", {}), ("NormalizeIntensity", dict(nonzero=True, channel_wise=True)),
    ("ScaleIntensity", {}), ("ScaleIntensity", dict(minv=-1.0, maxv=1.0)),
]


@pytest.mark.parametrize(("name", "kwargs"), CT_CONFIGS)
def test_real_ct_intensity(name, kwargs, ct):
    img = ct[0]
    assert img.dtype == torch.int16 and tuple(img.shape) == (1, 128, 128, 32)
    compare(name, kwargs, img)                                 # int16 as loaded
    compare(name, kwargs, img.to(torch.float32))               # float32 (EnsureTyped / LoadImage default)
    if name == "ScaleIntensityRange":
        compare(name, kwargs, img.as_tensor().to(torch.float64))


def test_real_ct_label_post(ct, rng):
    """The tumour label (one component) with speckle and punched holes, and the CT's thresholded lung."""
    label = ct[1]
    noisy = label.clone()
    arr = noisy.as_tensor().numpy()
    arr[rng.random(arr.shape) < 0.002] = 1
    tumour = np.argwhere(arr[0] > 0)
    for p in tumour[rng.choice(len(tumour), 5, replace=False)]:
        arr[(0, *p)] = 0
    lung = MetaTensor((ct[0].as_tensor() < -400).to(torch.uint8), affine=ct[0].affine, meta=ct[0].meta)
    klcc, rso, fh = "KeepLargestConnectedComponent", "RemoveSmallObjects", "FillHoles"
    for x, configs in (
            (noisy, [(klcc, {}), (klcc, dict(connectivity=1)), (rso, dict(min_size=20)),
                     (rso, dict(min_size=50, by_measure=True)), (fh, {}), (fh, dict(connectivity=1))]),
            (noisy.to(torch.float32), [(klcc, {}), (fh, {})]),
            (lung, [(klcc, dict(connectivity=1)), (rso, dict(min_size=20)), (fh, {})])):
        for name, kw in configs:
            compare(name, kw, x, exact=True)


def test_real_atlas_post(atlas):
    """Desikan-Killiany atlas labels on a crop, as uint8 and as a float label map (MONAI labels every
    value over the whole crop, so the crop is kept small)."""
    x = atlas[:, 35:85, 50:110, 40:90]
    assert len(torch.unique(x)) > 30
    compare("KeepLargestConnectedComponent", {}, x, exact=True)
    compare("KeepLargestConnectedComponent", dict(applied_labels=[5, 17, 40], independent=False), x, exact=True)
    compare("KeepLargestConnectedComponent", dict(connectivity=1, num_components=2), x.to(torch.float32), exact=True)
    for y in (x, x.to(torch.float32)):
        compare("RemoveSmallObjects", dict(min_size=2000), y, exact=True)       # per-value rule
        compare("FillHoles", dict(applied_labels=[3, 17, 41, 60]), y, exact=True)
    one = (x == 17) | (x == 18)
    compare("RemoveSmallObjects", dict(min_size=30, connectivity=1), one.to(torch.uint8), exact=True)


# ----------------------------------------------------------------------------- Spacing
@pytest.mark.parametrize("spatial", [(13, 17, 9), (23, 11)])
def test_spacing(spatial, rng):
    arr = intensity_input(rng, (2, *spatial), np.float32)
    for kind in ("meta",):
        x = as_kind(arr, kind)
        for kw in (dict(pixdim=(1.7,) * len(spatial)), dict(pixdim=(0.9, 2.3, 1.1)[: len(spatial)], mode="nearest"),
                   dict(pixdim=1.3, diagonal=True, padding_mode="zeros"), dict(pixdim=(2.0,) * len(spatial), mode=1,
                                                                              align_corners=True)):
            compare("Spacing", kw, x)
            ours, theirs = mm.Spacing(**kw), mt.Spacing(**kw)     # inverse needs the instance that applied it
            out, ref = ours(x), theirs(copy.deepcopy(x))
            assert_same(out, ref, exact=False)
            back, ref_back = ours.inverse(out), theirs.inverse(ref)
            assert_same(back, ref_back, exact=False)
            assert tuple(back.shape) == tuple(x.shape)


@pytest.fixture
def compiled_calls(monkeypatch):
    """Counts the calls of the compiled Spacing path (medseg_fast.monai.spatial._resample_axes)."""
    import medseg_fast.monai.spatial as sp

    real, calls = sp._resample_axes, []

    def spy(*args, **kwargs):
        calls.append(args[3])       # the order
        return real(*args, **kwargs)

    monkeypatch.setattr(sp, "_resample_axes", spy)
    return calls


def _diag_meta(arr: np.ndarray, spacing, origin, flip_first: bool = False) -> MetaTensor:
    sr = arr.ndim - 1
    aff = np.eye(sr + 1)
    aff[np.arange(sr), np.arange(sr)] = spacing[:sr]
    aff[:sr, sr] = origin[:sr]
    if flip_first:
        aff[0, 0] *= -1
    return MetaTensor(torch.from_numpy(np.ascontiguousarray(arr)), affine=torch.tensor(aff),
                      meta={"filename_or_obj": "case_011.nii.gz"})


# (Spacing kwargs, compiled): the axis-aligned cases our kernel reproduces, and ones it hands to MONAI
SPACING_CASES = [
    (dict(pixdim=(1.7, 0.9, 3.1)), True),                                   # MONAI's defaults: bilinear, border
    (dict(pixdim=(0.6, 1.9, 2.2), padding_mode="zeros"), True),
    (dict(pixdim=(1.1, 0.65, 2.9), align_corners=True), True),
    (dict(pixdim=(1.0371, 2.2913, 0.7137), mode="nearest"), True),
    (dict(pixdim=(0.9173, 1.4417, 3.3071), mode="nearest", padding_mode="zeros"), True),
    (dict(pixdim=(0.7, 1.6, 2.1), mode=3), True),                           # scipy order 3, border
    (dict(pixdim=(1.35, 0.85, 4.2), mode=1, padding_mode="nearest"), True),
    (dict(pixdim=(1.1519, 2.0537, 1.9031), mode=0), True),
    (dict(pixdim=(0.9, 1.2, 2.0), diagonal=True), True),                    # flipped axis: negative scale
    (dict(pixdim=(0.7, 1.6, 2.1), mode=3, align_corners=True), False),      # MONAI's rescaled numpy grid
    (dict(pixdim=(0.7, 1.6, 2.1), mode=2), False),
    (dict(pixdim=(0.7, 1.6, 2.1), padding_mode="reflection"), False),
    (dict(pixdim=(0.9, 1.4625, 2.8125), mode="nearest"), False),            # 1.125x: a sample on a tie
    (dict(pixdim=(1.1, 1.3, 2.2), dtype=np.float32), False),                # MONAI's float32 grid
]


@pytest.mark.parametrize(("kwargs", "compiled"), SPACING_CASES)
@pytest.mark.parametrize("spatial", [(14, 9, 11), (17, 8)])
def test_spacing_compiled_path(kwargs, compiled, spatial, rng, compiled_calls):
    """Axis-aligned grids run the compiled kernel and equal MONAI (values within 1e-6 relative,
    same shape, affine, meta, applied operations and inverse); the rest run MONAI's code."""
    arr = intensity_input(rng, (2, *spatial), np.float32)
    x = _diag_meta(arr, (0.8, 1.3, 2.5), (10.0, -4.0, 3.0), flip_first=kwargs.get("diagonal", False))
    ours, theirs = mm.Spacing(**kwargs), mt.Spacing(**kwargs)
    snap = copy.deepcopy(x)
    ref = theirs(copy.deepcopy(x))
    out = ours(x)
    _assert_unchanged(x, snap)
    assert_same(out, ref, exact=False)
    assert bool(compiled_calls) == compiled, (kwargs, compiled_calls)
    back, ref_back = ours.inverse(out), theirs.inverse(ref)
    assert_same(back, ref_back, exact=False)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float64])
def test_spacing_input_dtypes(dtype, rng, compiled_calls):
    """Integer and float64 images: MONAI converts to its ``dtype`` first; the kernel reads them as they are."""
    x = _diag_meta(intensity_input(rng, (1, 12, 10, 9), dtype), (1.0, 1.0, 2.5), (0.0, 0.0, 0.0))
    for kw in (dict(pixdim=(0.7, 1.3, 1.1)), dict(pixdim=(0.7, 1.3, 1.1), mode=3)):
        compare("Spacing", kw, x)
    assert len(compiled_calls) == 2


@pytest.mark.parametrize("padding_mode", ["border", "zeros"])
def test_spacing_non_finite(padding_mode, rng, compiled_calls):
    """NaN and inf propagate as in MONAI (zero padding with non-finite values runs MONAI's code:
    grid_sample skips the taps the kernel weighs 0)."""
    arr = intensity_input(rng, (1, 12, 10, 9), np.float32)
    arr[0, 3, 4, 5], arr[0, 0, 0, 0], arr[0, 11, 9, 8] = np.nan, np.inf, -np.inf
    x = _diag_meta(arr, (1.0, 1.0, 2.5), (0.0, 0.0, 0.0))
    compare("Spacing", dict(pixdim=(0.83, 1.37, 1.9), padding_mode=padding_mode), x)
    assert bool(compiled_calls) == (padding_mode == "border")


def test_spacing_rotated_affine_runs_monai(rng, compiled_calls):
    """A rotated source affine with a diagonal target (``diagonal=True``) is not separable: MONAI's code."""
    x = as_kind(intensity_input(rng, (1, 9, 11, 7), np.float32), "meta")     # off-diagonal affine
    compare("Spacing", dict(pixdim=1.2, diagonal=True), x)
    assert not compiled_calls


def test_spacing_real_ct(ct, compiled_calls):
    """The chest CT crop (MONAI LoadImage meta, RAS flips) at order 3 and bilinear, and the label
    map with nearest: MONAI's grid and values, through the compiled kernel."""
    image = ct[0].to(torch.float32)
    for kw in (dict(pixdim=(1.5, 1.5, 2.0), mode=3), dict(pixdim=(0.9, 0.9, 1.7)),
               dict(pixdim=(1.3017, 1.3017, 2.2031), mode="nearest")):
        compare("Spacing", kw, image)
    compare("Spacing", dict(pixdim=(1.3017, 1.3017, 2.2031), mode="nearest"), ct[1], exact=True)
    assert sorted(compiled_calls) == [0, 0, 1, 3]


def test_spacing_lazy_and_tensor_inputs(rng, compiled_calls):
    """Lazy Spacing, plain torch tensors (identity affine, MONAI's warning) and numpy arrays: as MONAI."""
    arr = intensity_input(rng, (1, 10, 9, 8), np.float32)
    compare("Spacing", dict(pixdim=(0.8, 1.7, 1.3)), torch.from_numpy(arr))
    compare("Spacing", dict(pixdim=(0.8, 1.7, 1.3)), arr)
    x = _diag_meta(arr, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    ours, theirs = mm.Spacing(pixdim=(0.8, 1.7, 1.3), lazy=True), mt.Spacing(pixdim=(0.8, 1.7, 1.3), lazy=True)
    out, ref = ours(x), theirs(copy.deepcopy(x))
    assert out.pending_operations and len(out.pending_operations) == len(ref.pending_operations)
    assert tuple(out.peek_pending_shape()) == tuple(ref.peek_pending_shape())
    grad = torch.from_numpy(arr).requires_grad_(True)
    o = mm.Spacing(pixdim=(0.8, 1.7, 1.3))(grad)
    o.sum().backward()            # MONAI's differentiable torch path for inputs that require grad
    assert grad.grad is not None


# ----------------------------------------------------------------------------- dictionary forms
DICT_CASES = [
    ("ScaleIntensityRanged", dict(a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True), "image"),
    ("ScaleIntensityRangePercentilesd", dict(lower=1, upper=99, b_min=0.0, b_max=1.0, clip=True, relative=True),
     "image"),
    ("NormalizeIntensityd", dict(nonzero=True), "image"), ("NormalizeIntensityd", {}, "image"),
    ("ScaleIntensityd", dict(minv=-1.0, maxv=2.0), "image"),
    ("KeepLargestConnectedComponentd", dict(applied_labels=[1, 2], independent=False, connectivity=1), "label"),
    ("KeepLargestConnectedComponentd", dict(num_components=2), "label"),
    ("RemoveSmallObjectsd", dict(min_size=5, connectivity=2), "label"),
    ("RemoveSmallObjectsd", dict(min_size=5, by_measure=True, independent_channels=False), "label"),
    ("FillHolesd", dict(applied_labels=[1, 2], connectivity=1), "label"), ("FillHolesd", {}, "label"),
    ("Spacingd", dict(pixdim=(1.5, 2.0, 1.0), mode="nearest"), "label"),
]


@pytest.mark.parametrize(("name", "kwargs", "key"), DICT_CASES)
def test_dict_forms(name, kwargs, key, rng):
    lab = label_map(rng, (15, 12, 9), 3)
    data = {"image": as_kind(intensity_input(rng, (1, 15, 12, 9), np.float32), "meta"),
            "label": as_kind(lab[None].astype(np.uint8), "meta"), "label2": lab[None].astype(np.float32),
            "extra": "not an image"}
    keys = [key, key + "2"] if key == "label" else [key]
    compare(name, dict(keys=keys, **kwargs), data, exact=key == "label")
    # missing keys: KeyError as in MONAI, skipped with allow_missing_keys=True
    compare(name, dict(keys=[key, "absent"], **kwargs), data, exact=key == "label")
    compare(name, dict(keys=[key, "absent"], allow_missing_keys=True, **kwargs), data, exact=key == "label")
    ours = getattr(mm, name)(keys=keys, **kwargs)
    assert isinstance(ours, getattr(mt, name))


def test_compose_pipeline_and_inverse(ct):
    """A typical CT pipeline built from our classes inside monai.transforms.Compose equals MONAI's
    built from MONAI's, and Compose.inverse (Spacingd) restores the same grid in both."""

    def pipeline(lib):
        return mt.Compose([
            lib.Spacingd(keys=["image", "label"], pixdim=(1.0, 1.0, 3.0), mode=("bilinear", "nearest")),
            lib.ScaleIntensityRanged(keys="image", a_min=-1000, a_max=400, b_min=0.0, b_max=1.0, clip=True),
            lib.NormalizeIntensityd(keys="image", nonzero=True),
            lib.ScaleIntensityRangePercentilesd(keys="image", lower=1, upper=99, b_min=0.0, b_max=1.0),
            lib.ScaleIntensityd(keys="image"),
            lib.KeepLargestConnectedComponentd(keys="label"),
            lib.FillHolesd(keys="label"),
            lib.RemoveSmallObjectsd(keys="label", min_size=10),
        ])

    data = {"image": ct[0].to(torch.float32), "label": ct[1]}
    ours, theirs = pipeline(mm), pipeline(mt)      # Compose.inverse needs the instances that ran
    ref = theirs(copy.deepcopy(data))
    snap = copy.deepcopy(data)
    out = ours(data)
    _assert_unchanged(data, snap)
    assert_same(out, ref, exact=False)
    assert_same(out["label"], ref["label"], exact=True)
    back, ref_back = ours.inverse(out), theirs.inverse(ref)
    assert_same(back, ref_back, exact=False)
    assert tuple(back["image"].shape) == tuple(data["image"].shape)
    np.testing.assert_allclose(back["image"].affine.numpy(), data["image"].affine.numpy(), atol=1e-5)
    # array forms in Compose
    arr = [mt.Compose([lib.Spacing(pixdim=(1.2, 1.2, 4.0)), lib.ScaleIntensityRange(-1000, 1000, 0.0, 1.0, True),
                       lib.NormalizeIntensity()]) for lib in (mm, mt)]
    x = ct[0].to(torch.float32)
    o, r = arr[0](x), arr[1](copy.deepcopy(x))
    assert_same(o, r, exact=False)
    assert_same(arr[0].inverse(o), arr[1].inverse(r), exact=False)


# ----------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(("name", "kwargs"), [
    ("ScaleIntensityRangePercentiles", dict(lower=-1, upper=50, b_min=0, b_max=1)),
    ("ScaleIntensityRangePercentiles", dict(lower=1, upper=101, b_min=0, b_max=1)),
    ("ScaleIntensityRangePercentilesd", dict(keys="x", lower=1, upper=101, b_min=0, b_max=1)),
])
def test_bad_constructor_arguments(name, kwargs):
    with pytest.raises(ValueError, match="[Pp]ercentile"):
        getattr(mt, name)(**kwargs)
    with pytest.raises(ValueError, match="[Pp]ercentile"):
        getattr(mm, name)(**kwargs)


def test_bad_call_arguments(rng):
    two = rng.integers(0, 3, (2, 6, 7)).astype(np.uint8)
    neg = np.array([[[0, -1, 2], [2, 2, 0]]], np.int16)
    compare("KeepLargestConnectedComponent", dict(is_onehot=False), torch.from_numpy(two), exact=True)  # ValueError
    compare("KeepLargestConnectedComponent", dict(connectivity=4), torch.from_numpy(two[:1]), exact=True)
    compare("RemoveSmallObjects", dict(min_size=2), neg, exact=True)                       # negative labels
    compare("RemoveSmallObjects", dict(min_size=2, connectivity=5), two[:1], exact=True)
    compare("FillHoles", dict(connectivity=4), two[:1], exact=True)
    compare("NormalizeIntensity", dict(subtrahend=[1.0], channel_wise=True), two.astype(np.float32))
    with pytest.raises(ValueError, match="Negative"):
        mm.RemoveSmallObjects(min_size=2)(neg)
    with pytest.raises(TypeError, match="per_component"):
        mm.RemoveSmallObjects(per_component="yes")
    with pytest.raises(TypeError, match="per_component"):
        mm.RemoveSmallObjectsd(keys="x", per_component=1)


def test_per_component_option(rng):
    """Our keyword-only ``per_component=True``: each value's small connected pieces are removed."""
    img = np.zeros((1, 12, 12), np.uint8)
    img[0, 0, 0:3] = 2
    img[0, 5:8, 0:3] = 2
    out = mm.RemoveSmallObjects(min_size=4, per_component=True)(img)
    assert int((out == 2).sum()) == 9 and type(out) is np.ndarray
    assert int((mm.RemoveSmallObjects(min_size=4)(img) == 2).sum()) == 12
    with pytest.raises(ValueError, match="per_component"):
        mm.RemoveSmallObjects(min_size=4, per_component=True)(np.concatenate([img, img]) * 2)


# ----------------------------------------------------------------------------- devices
@pytest.mark.cuda
@pytest.mark.parametrize("name", ALL)
def test_cuda_tensors_stay_on_device(name, rng):
    lab = label_map(rng, (12, 11, 9), 3)[None]
    arr = lab.astype(np.uint8) if name in POST else intensity_input(rng, (1, 12, 11, 9), np.float32)
    kw = {"Spacing": dict(pixdim=1.5), "ScaleIntensityRange": dict(a_min=-100, a_max=100),
          "ScaleIntensityRangePercentiles": dict(lower=1, upper=99, b_min=0.0, b_max=1.0),
          "RemoveSmallObjects": dict(min_size=3)}.get(name, {})
    x = MetaTensor(torch.from_numpy(arr).cuda(), affine=AFFINE.clone())
    out = compare(name, kw, x, exact=name in POST)
    assert out.device.type == "cuda"
