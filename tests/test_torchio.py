"""medseg_fast.torchio against the installed TorchIO classes of the same names.

Every class runs next to TorchIO's on the same Subject (random inputs of awkward shapes: 1-3
channels, odd and prime sizes, (W, H, 1) 2-D images, rotated affines; and the real CT / MR
volumes and label maps in tests/data), inside ``tio.Compose``. Each comparison checks the image
types, dtypes, shapes, affines and values (labels identical, intensities within 1e-6 of the
output range), that our call leaves its input unchanged, that the fast path was taken where the
docstrings say it is (TorchIO's code is patched to count its calls), and that inputs TorchIO
rejects are rejected with the same exception type.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tio = pytest.importorskip("torchio")
sitk = pytest.importorskip("SimpleITK")

import medseg_fast.torchio as mt  # noqa: E402
from conftest import DATA  # noqa: E402

# ----------------------------------------------------------------------------- helpers


def _affine(spacing, rotation=(0.0, 0.0), origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    a, b = rotation
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
    r = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, cb, -sb], [0, sb, cb]])
    out = np.eye(4)
    out[:3, :3] = r * np.asarray(spacing, dtype=float)
    out[:3, 3] = origin
    return out


def _subject(rng, shape, channels=1, dtype=np.float32, affine=None, labels=4) -> tio.Subject:
    affine = np.eye(4) if affine is None else affine
    x = rng.standard_normal((channels,) + tuple(shape)) * 300 + 40
    seg = rng.integers(0, labels, (1,) + tuple(shape)).astype(np.uint8)
    return tio.Subject(
        ct=tio.ScalarImage(tensor=torch.from_numpy(x.astype(dtype)), affine=affine),
        mr=tio.ScalarImage(tensor=torch.from_numpy((x[:1] * 0.1 + 7).astype(dtype)), affine=affine),
        seg=tio.LabelMap(tensor=torch.from_numpy(seg), affine=affine),
    )


def _real(name: str, cls=tio.ScalarImage):
    return cls(DATA / f"{name}.nii.gz")


def _snapshot(subject: tio.Subject) -> dict:
    return {k: (im.data.clone(), im.affine.copy(), type(im)) for k, im in subject.get_images_dict(intensity_only=False).items()}


def _unchanged(subject: tio.Subject, snap: dict) -> None:
    for k, (data, affine, kind) in snap.items():
        im = subject[k]
        assert type(im) is kind
        assert im.data.dtype == data.dtype
        np.testing.assert_array_equal(im.data.numpy(), data.numpy(), err_msg=f"input image {k} was modified")
        np.testing.assert_array_equal(im.affine, affine)


def _compare(ours: tio.Subject, theirs: tio.Subject, *, exact: bool = False, affine_atol: float = 1e-9,
             scale: float = 0.0) -> None:
    a_imgs = ours.get_images_dict(intensity_only=False)
    b_imgs = theirs.get_images_dict(intensity_only=False)
    assert list(a_imgs) == list(b_imgs)
    for k in a_imgs:
        a, b = a_imgs[k], b_imgs[k]
        assert type(a) is type(b), k
        assert a.data.dtype == b.data.dtype, (k, a.data.dtype, b.data.dtype)
        assert a.data.shape == b.data.shape, (k, a.data.shape, b.data.shape)
        np.testing.assert_allclose(a.affine, b.affine, rtol=0, atol=affine_atol, err_msg=k)
        if exact or not a.data.is_floating_point():
            assert torch.equal(a.data, b.data) or (
                a.data.is_floating_point() and torch.equal(torch.isnan(a.data), torch.isnan(b.data))
                and torch.equal(a.data.nan_to_num(), b.data.nan_to_num())), k
        else:
            A, B = a.data.double().numpy(), b.data.double().numpy()
            np.testing.assert_array_equal(np.isnan(A), np.isnan(B), err_msg=k)
            finite = np.isfinite(B)
            ref = max(np.abs(B[finite]).max(initial=0.0), scale, 1e-30)
            np.testing.assert_allclose(A[finite], B[finite], rtol=1e-6, atol=1e-6 * ref, err_msg=k)


def _out_scale(transform) -> float:
    """The scale of RescaleIntensity's error: max(|out_min|, |out_max|) (see its docstring)."""
    return max(abs(float(transform.out_min)), abs(float(transform.out_max)))


def _both(ours, theirs, subject, **kw):
    if isinstance(ours, mt.RescaleIntensity):
        kw.setdefault("scale", _out_scale(ours))
    snap = _snapshot(subject)
    a = tio.Compose([ours])(subject)
    _unchanged(subject, snap)
    b = tio.Compose([theirs])(subject)
    _compare(a, b, **kw)
    return a, b


class _Calls:
    """Counts calls of a TorchIO method (to tell the fast path from the delegated one)."""

    def __init__(self, monkeypatch, owner, name):
        self.n = 0
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            self.n += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)


# ----------------------------------------------------------------------------- import rules


def test_import_medseg_fast_does_not_import_torchio():
    code = "import sys, medseg_fast; print('torch' in sys.modules, 'torchio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_names_and_subclasses():
    assert sorted(mt.__all__) == ["Clamp", "GridAggregator", "KeepLargestComponent", "RemoveSmallObjects",
                                  "Resample", "RescaleIntensity", "ZNormalization"]
    for name in mt.__all__:
        if name == "RemoveSmallObjects":
            assert issubclass(mt.RemoveSmallObjects, tio.Transform)
        elif name == "GridAggregator":
            assert issubclass(mt.GridAggregator, tio.inference.GridAggregator)
        else:
            assert issubclass(getattr(mt, name), getattr(tio, name))
    with pytest.raises(AttributeError):
        mt.NotAThing  # noqa: B018


# ----------------------------------------------------------------------------- intensity

SHAPES = [((7, 5, 3), 1), ((13, 1, 17), 2), ((31, 29, 1), 1), ((2, 3, 5), 3)]
RESCALE_ARGS = [
    {}, {"out_min_max": (-1, 1)}, {"percentiles": (0.5, 99.5)}, {"out_min_max": 3, "percentiles": (5, 95)},
    {"in_min_max": (-1000, 1000), "out_min_max": (-1, 1)}, {"percentiles": (1, 99), "masking_method": "seg"},
    {"masking_method": lambda t: t > t.float().mean()}, {"percentiles": 90}, {"out_min_max": (2, 5.5)},
]


@pytest.mark.parametrize("shape,channels", SHAPES)
@pytest.mark.parametrize("kwargs", RESCALE_ARGS, ids=lambda k: str(sorted(k)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_rescale_intensity(monkeypatch, shape, channels, kwargs, dtype):
    rng = np.random.default_rng(1)
    if kwargs.get("masking_method") is not None:
        channels = 1          # TorchIO indexes the image with the one-channel mask
    subject = _subject(rng, shape, channels, dtype)
    calls = _Calls(monkeypatch, tio.RescaleIntensity, "rescale")
    a, _ = _both(mt.RescaleIntensity(**kwargs), tio.RescaleIntensity(**kwargs), subject)
    assert calls.n == 2       # ours: 0 (fast path on both images), TorchIO: 2
    assert torch.equal(a.seg.data, subject.seg.data)


def test_rescale_intensity_real_ct_and_mr(monkeypatch):
    subject = tio.Subject(ct=_real("ct_chest_lung2_crop_hu"), seg=_real("ct_chest_lung2_crop_tumor_label", tio.LabelMap),
                          mr=_real("itk_kmeans_t1_mri"))
    subject.mr.set_data(subject.mr.data[:, :128, :128, :32])     # same spatial shape as the CT
    subject.mr.affine = subject.ct.affine
    for kwargs in [{"out_min_max": (-1, 1), "in_min_max": (-1000, 1000)}, {"percentiles": (0.5, 99.5)},
                   {"percentiles": (0.5, 99.5), "masking_method": "seg"}, {}]:
        calls = _Calls(monkeypatch, tio.RescaleIntensity, "rescale")
        _both(mt.RescaleIntensity(**kwargs), tio.RescaleIntensity(**kwargs), subject)
        assert calls.n == 2
        monkeypatch.undo()


def test_rescale_intensity_delegated_cases(monkeypatch):
    rng = np.random.default_rng(3)
    # NaN voxels: TorchIO's percentiles are NaN and so is everything; ours delegates.
    subject = _subject(rng, (6, 7, 8))
    data = subject.ct.data.clone()
    data[0, 1, 2, 3] = float("nan")
    subject.ct.set_data(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _both(mt.RescaleIntensity(), tio.RescaleIntensity(), subject)
        _both(mt.RescaleIntensity(percentiles=(1, 99), masking_method="seg"),
              tio.RescaleIntensity(percentiles=(1, 99), masking_method="seg"), subject)
    # constant image and empty mask: TorchIO warns and returns the image unchanged
    const = tio.Subject(ct=tio.ScalarImage(tensor=torch.full((1, 4, 5, 6), 3.0)),
                        seg=tio.LabelMap(tensor=torch.zeros((1, 4, 5, 6), dtype=torch.uint8)))
    for kwargs in [{}, {"masking_method": "seg"}]:
        with pytest.warns(RuntimeWarning):
            a = mt.RescaleIntensity(**kwargs)(const)
        with pytest.warns(RuntimeWarning):
            b = tio.RescaleIntensity(**kwargs)(const)
        _compare(a, b, exact=True)


def test_rescale_intensity_include_exclude():
    rng = np.random.default_rng(4)
    subject = _subject(rng, (5, 6, 7))
    for kw in [{"include": ["mr"]}, {"exclude": ["mr"]}]:
        a, b = _both(mt.RescaleIntensity(**kw), tio.RescaleIntensity(**kw), subject)
        untouched = "ct" if "include" in kw else "mr"
        assert torch.equal(a[untouched].data, subject[untouched].data)


def test_rescale_intensity_bad_arguments():
    for kwargs in [{"percentiles": (-1, 50)}, {"percentiles": (0, 101)}, {"out_min_max": (1, 2, 3)}]:
        with pytest.raises(ValueError):
            tio.RescaleIntensity(**kwargs)
        with pytest.raises(ValueError):
            mt.RescaleIntensity(**kwargs)
    with pytest.raises((TypeError, ValueError)):
        mt.RescaleIntensity(out_min_max="a")


def test_rescale_other_inputs():
    """Tensors, arrays and Images in, the same kind out (TorchIO's parsing)."""
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((2, 9, 8, 7)).astype(np.float32))
    for inp in [x, x.numpy(), tio.ScalarImage(tensor=x)]:
        a, b = mt.RescaleIntensity((-1, 1))(inp), tio.RescaleIntensity((-1, 1))(inp)
        assert type(a) is type(b)
        av = a.data if isinstance(a, tio.Image) else a
        bv = b.data if isinstance(b, tio.Image) else b
        np.testing.assert_allclose(np.asarray(av), np.asarray(bv), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(x.numpy(), np.asarray(inp.data if isinstance(inp, tio.Image) else inp))


@pytest.mark.parametrize("shape,channels", SHAPES)
@pytest.mark.parametrize("bounds", [(-100, 200.3), (-100, None), (None, 50), (0.1, 0.1), (-1e30, 1e30)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_clamp(monkeypatch, shape, channels, bounds, dtype):
    rng = np.random.default_rng(7)
    subject = _subject(rng, shape, channels, dtype)
    data = subject.ct.data.clone()
    if dtype == np.float32:
        data.view(-1)[0] = -0.0
        if data.numel() > 2:
            data.view(-1)[1] = float("nan")
            data.view(-1)[2] = float("inf")
    subject.ct.set_data(data)
    calls = _Calls(monkeypatch, tio.Clamp, "clamp")
    lo, hi = bounds
    _both(mt.Clamp(lo, hi), tio.Clamp(lo, hi), subject, exact=True)
    fast = dtype == np.float32 and lo is not None and hi is not None
    assert calls.n == (2 if fast else 4)
    if fast:    # signed zeros and NaN kept bit for bit
        out = mt.Clamp(lo, hi)(subject).ct.data
        ref = tio.Clamp(lo, hi)(subject).ct.data
        assert torch.equal(out.view(torch.int32), ref.view(torch.int32))


def test_clamp_errors_as_torchio():
    subject = _subject(np.random.default_rng(8), (3, 4, 5))
    for lo, hi in [(None, None), (1e40, 1e41)]:
        with pytest.raises(RuntimeError):
            tio.Clamp(lo, hi)(subject)
        with pytest.raises(RuntimeError):
            mt.Clamp(lo, hi)(subject)


@pytest.mark.parametrize("shape,channels", SHAPES)
@pytest.mark.parametrize("masking", [None, "seg", "Left"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_znormalization(shape, channels, masking, dtype):
    rng = np.random.default_rng(9)
    if masking == "seg":
        channels = 1
    subject = _subject(rng, shape, channels, dtype)
    if masking == "Left" and shape[0] < 2:
        return
    _both(mt.ZNormalization(masking), tio.ZNormalization(masking), subject, exact=True)


def test_znormalization_real_and_zero_std():
    subject = tio.Subject(mr=_real("itk_kmeans_t1_mri"), seg=_real("itk_kmeans_t1_seg6", tio.LabelMap))
    _both(mt.ZNormalization(), tio.ZNormalization(), subject, exact=True)
    _both(mt.ZNormalization("seg"), tio.ZNormalization("seg"), subject, exact=True)
    const = tio.Subject(ct=tio.ScalarImage(tensor=torch.ones((1, 3, 4, 5))))
    with pytest.raises(RuntimeError, match="Standard deviation is 0"):
        tio.ZNormalization()(const)
    with pytest.raises(RuntimeError, match="Standard deviation is 0"):
        mt.ZNormalization()(const)


# ----------------------------------------------------------------------------- Resample

ROT = (0.3, -0.7)
RESAMPLE_CASES = [
    # shape, spacing, target, rotation, channels, (image fast?, label fast?)
    ((36, 41, 29), (0.5, 0.7, 1.3), (0.25, 0.35, 0.65), (0, 0), 1, (True, True)),
    ((36, 42, 30), (1.0, 1.0, 1.0), 2, ROT, 2, (True, False)),        # 2x down: nearest ties delegated
    ((37, 41, 29), (1.0, 1.0, 1.0), (0.5, 1 / 3, 1.0), ROT, 1, (True, True)),
    ((36, 41, 1), (1.0, 1.0, 1.0), (0.5, 0.5, 3.0), (0, 0), 1, (True, True)),
    ((21, 27, 15), (1.0, 1.0, 1.0), 3, (1.0, 2.0), 3, (True, True)),  # 3x down: no ties
    # not exact zooms: the per-axis affine kernel; labels with a nearest-neighbour tie go to TorchIO
    ((36, 41, 29), (0.7, 0.7, 2.5), 1.0, (0, 0), 1, (True, False)),
    ((13, 11, 7), (0.9, 1.1, 1.3), (0.45, 0.55, 1.3), ROT, 1, (True, False)),  # 7 * 1.3 / 1.3 floors to 6
    ((23, 19, 11), (0.83, 1.17, 2.9), (1.01, 0.97, 1.7), ROT, 2, (True, True)),
    ((23, 19, 1), (0.83, 1.17, 2.9), (1.01, 0.97, 1.7), ROT, 1, (True, True)),   # size-1 axis: target spacing
    ((29, 31, 9), (1.0, 1.0, 3.0), (0.7, 0.7, 1.1), (0.0, 1.2), 1, (True, False)),
    ((13, 11, 7), (0.75, 1.25, 1.5), (0.375, 0.625, 0.75), ROT, 1, (True, True)),
    ((16, 17, 18), (1.0, 1.0, 1.0), 1.0, ROT, 1, (True, True)),       # identity grid
]


@pytest.mark.parametrize("case", RESAMPLE_CASES, ids=lambda c: f"{c[0]}-{c[2]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resample(monkeypatch, case, dtype):
    shape, spacing, target, rotation, channels, (img_fast, lab_fast) = case
    rng = np.random.default_rng(11)
    affine = _affine(spacing, rotation, rng.standard_normal(3) * 50)
    subject = _subject(rng, shape, channels, dtype, affine)
    calls = _Calls(monkeypatch, mt.Resample, "_sitk")
    _both(mt.Resample(target), tio.Resample(target), subject)
    assert calls.n == 2 * (not img_fast) + (not lab_fast)


@pytest.mark.parametrize("case", [c for c in RESAMPLE_CASES if c[5][0]], ids=lambda c: f"{c[0]}-{c[2]}")
def test_resample_sample_positions(monkeypatch, case):
    """On a float64 image holding its own index coordinates, linear interpolation returns the
    sample positions themselves: ours must be ITK's to 1e-9 voxel (edge voxels excluded, where
    both clamp)."""
    shape, spacing, target, rotation, _, _ = case
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    affine = _affine(spacing, rotation, (12.5, -3.25, 40.0))
    images = {f"axis{d}": tio.ScalarImage(tensor=torch.from_numpy(g[None].copy()), affine=affine)
              for d, g in enumerate(grids)}
    subject = tio.Subject(**images)
    calls = _Calls(monkeypatch, mt.Resample, "_sitk")
    a = mt.Resample(target)(subject)
    assert calls.n == 0
    b = tio.Resample(target)(subject)
    for d in range(3):
        pa, pb = a[f"axis{d}"].data.numpy(), b[f"axis{d}"].data.numpy()
        inside = (pb > 0) & (pb < shape[d] - 1)
        np.testing.assert_allclose(pa[inside], pb[inside], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(pa[~inside], pb[~inside])


def test_resample_options(monkeypatch):
    rng = np.random.default_rng(12)
    subject = _subject(rng, (12, 10, 8), 1, np.float32, _affine((1.0, 1.0, 1.0), ROT))
    for kwargs in [{"scalars_only": True}, {"image_interpolation": "nearest"}, {"label_interpolation": "linear"},
                   {"include": ["seg"]}, {"exclude": ["ct"]}]:
        _both(mt.Resample(0.5, **kwargs), tio.Resample(0.5, **kwargs), subject)
    # bspline images go to TorchIO image by image (labels stay ours); antialias wholesale
    calls = _Calls(monkeypatch, tio.Resample, "apply_transform")
    sitk_calls = _Calls(monkeypatch, mt.Resample, "_sitk")
    for kwargs in [{"image_interpolation": "bspline"}, {"antialias": True, "target": 2}]:
        kwargs = {"target": 0.5, **kwargs}
        _both(mt.Resample(**kwargs), tio.Resample(**kwargs), subject)
    assert calls.n == 2 + 1 and sitk_calls.n == 2


def test_resample_grid_targets(monkeypatch, tmp_path):
    """Image, image-name, path and (shape, affine) targets: ours where the target grid is our
    kernel's zoom of the image grid (identical grids included), TorchIO's code elsewhere."""
    rng = np.random.default_rng(20)
    affine = _affine((1.0, 1.0, 2.0), ROT, (3.0, 4.0, 5.0))
    subject = _subject(rng, (12, 10, 8), 1, np.float32, affine)
    half = np.array([[0.5, 0, 0, -0.25], [0, 0.5, 0, -0.25], [0, 0, 0.5, -0.25], [0, 0, 0, 1]])
    subject.add_image(tio.ScalarImage(tensor=torch.rand(1, 24, 20, 16), affine=affine @ half), "fine")
    path = tmp_path / "ref.nii.gz"
    subject.fine.save(path)
    cases = [("ct", 0), ("fine", 0), (subject.ct, 0), (subject.fine, 0), (((12, 10, 8), affine), 0),
             (((24, 20, 16), affine @ half), 0),
             (((6, 5, 4), affine @ np.diag([2.0, 2.0, 2.0, 1.0])), 4),   # grid shifted by half a voxel
             (((12, 10, 8), _affine((1.0, 1.0, 2.0), (0.2, 0.0), (3.0, 4.0, 5.0))), 4),   # rotated grid
             (str(path), 4)]                                             # paths: TorchIO loads them
    for target, delegated in cases:
        calls = _Calls(monkeypatch, mt.Resample, "_sitk")
        super_calls = _Calls(monkeypatch, tio.Resample, "apply_transform")
        a, _ = _both(mt.Resample(target), tio.Resample(target), subject, affine_atol=1e-6)
        assert calls.n + (super_calls.n - 1) * 4 == delegated, target
        monkeypatch.undo()


def test_resample_int_images_delegated(monkeypatch):
    subject = tio.Subject(ct=_real("ct_chest_lung2_crop_hu"), seg=_real("ct_chest_lung2_crop_tumor_label", tio.LabelMap))
    sx, sy, sz = subject.ct.spacing
    calls = _Calls(monkeypatch, mt.Resample, "_sitk")
    _both(mt.Resample((sx / 2, sy / 2, sz / 2)), tio.Resample((sx / 2, sy / 2, sz / 2)), subject)
    assert calls.n == 1       # int16 CT with linear: TorchIO; uint8 label nearest: ours


def test_resample_real_volumes(monkeypatch):
    ct = _real("ct_chest_lung2_crop_hu")
    ct.set_data(ct.data.float())
    subject = tio.Subject(ct=ct, seg=_real("ct_chest_lung2_crop_tumor_label", tio.LabelMap))
    mr = tio.Subject(mr=_real("itk_kmeans_t1_mri"), seg=_real("itk_kmeans_t1_seg6", tio.LabelMap))
    mr.mr.set_data(mr.mr.data.float())
    sx, sy, sz = subject.ct.spacing
    calls = _Calls(monkeypatch, mt.Resample, "_sitk")
    _both(mt.Resample((sx / 2, sy / 2, sz / 4)), tio.Resample((sx / 2, sy / 2, sz / 4)), subject)
    _both(mt.Resample((1.0, 1.0, 1.5)), tio.Resample((1.0, 1.0, 1.5)), mr)
    _both(mt.Resample((6.0, 6.0, 9.0)), tio.Resample((6.0, 6.0, 9.0)), mr)   # 3x down (128 -> 42: not exact)
    _both(mt.Resample((1.37, 1.37, 2.11)), tio.Resample((1.37, 1.37, 2.11)), mr)
    assert calls.n == 0
    small = tio.Subject(ct=_real("ct_small_slice_hu"))
    small.ct.set_data(small.ct.data.float())
    s = small.ct.spacing
    calls2 = _Calls(monkeypatch, mt.Resample, "_sitk")
    _both(mt.Resample((s[0] / 2, s[1] / 2, 1.0)), tio.Resample((s[0] / 2, s[1] / 2, 1.0)), small)
    assert calls2.n == 0


def test_resample_in_compose_with_intensity():
    rng = np.random.default_rng(13)
    subject = _subject(rng, (20, 18, 16), 1, np.float32, _affine((1.0, 1.0, 2.0), ROT, (3, 4, 5)))
    ours = tio.Compose([mt.Resample((0.5, 0.5, 1.0)), mt.RescaleIntensity((-1, 1), percentiles=(1, 99)),
                        mt.KeepLargestComponent(include=["seg"])])
    theirs = tio.Compose([tio.Resample((0.5, 0.5, 1.0)), tio.RescaleIntensity((-1, 1), percentiles=(1, 99)),
                          tio.KeepLargestComponent(include=["seg"])])
    snap = _snapshot(subject)
    a = ours(subject)
    _unchanged(subject, snap)
    _compare(a, theirs(subject))
    assert [t.name for t in a.history] == ["Resample", "RescaleIntensity", "KeepLargestComponent"]


def test_resample_bad_targets():
    subject = _subject(np.random.default_rng(14), (4, 5, 6))
    for target, exc in [((1, 2), RuntimeError), (-1.0, ValueError), ((1.0, 0.0, 1.0), ValueError),
                        ([1, "a", 2], ValueError), ("nothere", ValueError)]:
        with pytest.raises(exc):
            tio.Resample(target)(subject)
        with pytest.raises(exc):
            mt.Resample(target)(subject)
    with pytest.raises(ValueError):
        mt.Resample(image_interpolation="cubicle")
    with pytest.raises(TypeError):
        mt.Resample(image_interpolation=3)


# ----------------------------------------------------------------------------- labels


@pytest.mark.parametrize("shape", [(30, 31, 17), (5, 7, 1), (40, 3, 9), (1, 1, 1), (64, 2, 2)])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int64, torch.bool])
def test_keep_largest_component(monkeypatch, shape, dtype):
    rng = np.random.default_rng(15)
    x = (rng.random((1,) + shape) > 0.55) * rng.integers(1, 4, (1,) + shape)
    seg = torch.from_numpy(x).to(dtype)
    subject = tio.Subject(seg=tio.LabelMap(tensor=seg, affine=_affine((1, 2, 3), ROT)),
                          ct=tio.ScalarImage(tensor=seg.float()))
    calls = _Calls(monkeypatch, tio.KeepLargestComponent, "apply_transform")
    a, _ = _both(mt.KeepLargestComponent(), tio.KeepLargestComponent(), subject, exact=True)
    assert calls.n == 1
    assert a.seg.data.dtype == torch.uint8 and torch.equal(a.ct.data, subject.ct.data)


def test_keep_largest_component_ties_and_real():
    # Equal-size components: ITK keeps the one whose first voxel comes first with x fastest.
    for a_box, b_box in [((0, 2, 0, 2, 5, 7), (6, 8, 6, 8, 0, 2)), ((0, 2, 5, 7, 0, 2), (6, 8, 0, 2, 6, 8)),
                         ((5, 7, 0, 2, 0, 2), (0, 2, 6, 8, 6, 8))]:
        y = torch.zeros((1, 10, 10, 10), dtype=torch.int16)
        y[0, a_box[0]:a_box[1], a_box[2]:a_box[3], a_box[4]:a_box[5]] = 1
        y[0, b_box[0]:b_box[1], b_box[2]:b_box[3], b_box[4]:b_box[5]] = 3
        _both(mt.KeepLargestComponent(), tio.KeepLargestComponent(), tio.Subject(seg=tio.LabelMap(tensor=y)),
              exact=True)
    tumor = tio.Subject(seg=_real("ct_chest_lung2_crop_tumor_label", tio.LabelMap))
    _both(mt.KeepLargestComponent(), tio.KeepLargestComponent(), tumor, exact=True)
    seg6 = _real("itk_kmeans_t1_seg6", tio.LabelMap)
    for v in (1, 3, 5):
        s = tio.Subject(seg=tio.LabelMap(tensor=(seg6.data == v).to(torch.uint8), affine=seg6.affine))
        _both(mt.KeepLargestComponent(), tio.KeepLargestComponent(), s, exact=True)


def test_keep_largest_component_errors_as_torchio():
    for seg in [torch.zeros((2, 4, 4, 4), dtype=torch.uint8), torch.zeros((1, 4, 4, 4), dtype=torch.float32)]:
        subject = tio.Subject(seg=tio.LabelMap(tensor=seg))
        with pytest.raises(RuntimeError):
            tio.KeepLargestComponent()(subject)
        with pytest.raises(RuntimeError):
            mt.KeepLargestComponent()(subject)


def _remove_small_reference(x: np.ndarray, min_size: int, fully: bool) -> np.ndarray:
    """SimpleITK per class: ConnectedComponent + RelabelComponent(minimumObjectSize)."""
    out = np.zeros_like(x)
    for c in range(x.shape[0]):
        for v in np.unique(x[c]):
            if v == 0:
                continue
            im = sitk.GetImageFromArray((x[c] == v).astype(np.uint8).T.copy())
            cc = sitk.RelabelComponent(sitk.ConnectedComponent(im, fully), minimumObjectSize=int(min_size))
            out[c][sitk.GetArrayFromImage(cc).T > 0] = v
    return out


@pytest.mark.parametrize("shape", [(20, 21, 9), (9, 5, 1), (3, 40, 7)])
@pytest.mark.parametrize("min_size", [0, 1, 3, 7])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.float32])
def test_remove_small_objects(shape, min_size, dtype):
    rng = np.random.default_rng(16)
    x = ((rng.random((2,) + shape) > 0.6) * rng.integers(1, 4, (2,) + shape)).astype(dtype)
    subject = tio.Subject(seg=tio.LabelMap(tensor=torch.from_numpy(x), affine=_affine((1, 1, 2), ROT)),
                          ct=tio.ScalarImage(tensor=torch.from_numpy(x.astype(np.float32))))
    snap = _snapshot(subject)
    for conn, fully in [(6, False), (26, True)]:
        out = tio.Compose([mt.RemoveSmallObjects(min_size, connectivity=conn)])(subject)
        _unchanged(subject, snap)
        assert out.seg.data.dtype == subject.seg.data.dtype
        np.testing.assert_array_equal(out.seg.affine, subject.seg.affine)
        assert torch.equal(out.ct.data, subject.ct.data)             # scalar images untouched
        ref = _remove_small_reference(x.astype(np.int64), min_size, fully)
        np.testing.assert_array_equal(out.seg.data.numpy().astype(np.int64), ref)


def test_remove_small_objects_mm3_and_args():
    x = np.zeros((1, 10, 10, 10), np.uint8)
    x[0, :2, :2, :2] = 1          # 8 voxels
    x[0, 5:, 5:, 5:] = 2          # 125 voxels
    seg = tio.LabelMap(tensor=torch.from_numpy(x), affine=np.diag([2.0, 2.0, 2.0, 1.0]))   # 8 mm3 voxels
    out = mt.RemoveSmallObjects(64, units="mm3")(seg).data.numpy()    # 8 voxels * 8 mm3 = 64: kept
    assert (out == 1).sum() == 8 and (out == 2).sum() == 125
    out = mt.RemoveSmallObjects(64, units="voxels")(seg).data.numpy()
    assert (out == 1).sum() == 0 and (out == 2).sum() == 125
    out = mt.RemoveSmallObjects(64.5, units="mm3")(seg).data.numpy()    # 8 voxels * 8 mm3 = 64 < 64.5
    assert (out == 1).sum() == 0
    for kwargs, exc, word in [({"min_size": -1}, ValueError, "min_size"), ({"min_size": float("nan")}, ValueError, "min_size"),
                              ({"min_size": "3"}, ValueError, "min_size"), ({"min_size": 2, "connectivity": 8}, ValueError, "connectivity"),
                              ({"min_size": 2, "units": "ml"}, ValueError, "units"),
                              ({"min_size": 2, "background": 0.5}, TypeError, "background")]:
        with pytest.raises(exc, match=word):
            mt.RemoveSmallObjects(**kwargs)
    bad = tio.LabelMap(tensor=torch.full((1, 2, 2, 2), 0.5))
    with pytest.raises(TypeError, match="integer"):
        mt.RemoveSmallObjects(1)(bad)


# ----------------------------------------------------------------------------- GridAggregator

AGG_CASES = [
    ((37, 41, 29), (16, 12, 10), (4, 2, 6), None, 2, 5),
    ((37, 41, 29), (16, 12, 10), (4, 2, 6), "constant", 3, 4),
    ((20, 20, 20), 10, 0, None, 1, 3),
    ((23, 9, 14), (8, 9, 5), (2, 0, 2), "reflect", 1, 7),
    ((11, 13, 1), (5, 6, 1), (2, 2, 0), None, 2, 64),
]


def _aggregate(aggregator, sampler, channels, batch_size, dtype=torch.float32, shuffle=False):
    loader = torch.utils.data.DataLoader(sampler, batch_size=batch_size, shuffle=shuffle,
                                         generator=torch.Generator().manual_seed(0))
    for batch in loader:
        x = batch["im"][tio.DATA]
        y = torch.cat([x * (c + 1) + c for c in range(channels)], 1).to(dtype)
        aggregator.add_batch(y, batch[tio.LOCATION])
    return aggregator.get_output_tensor()


@pytest.mark.parametrize("case", AGG_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[3]}")
@pytest.mark.parametrize("mode", ["crop", "average", "hann"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_grid_aggregator(case, mode, shuffle):
    shape, patch, overlap, padding, channels, batch_size = case
    rng = np.random.default_rng(17)
    subject = tio.Subject(im=tio.ScalarImage(tensor=torch.from_numpy(rng.standard_normal((1,) + shape).astype(np.float32))))
    sampler = tio.GridSampler(subject, patch, overlap, padding_mode=padding)
    ours = _aggregate(mt.GridAggregator(sampler, mode), sampler, channels, batch_size, shuffle=shuffle)
    theirs = _aggregate(tio.inference.GridAggregator(sampler, mode), sampler, channels, batch_size, shuffle=shuffle)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    if mode == "crop" and shuffle:
        return    # later patches overwrite earlier ones: the order matters, and both follow it
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6 * float(theirs.abs().max()))


def test_grid_aggregator_real_volume_and_dtypes():
    subject = tio.Subject(im=_real("itk_kmeans_t1_mri"))
    subject.im.set_data(subject.im.data.float() / 100)
    sampler = tio.GridSampler(subject, (48, 40, 24), (8, 8, 4), padding_mode="constant")
    for mode in ["average", "hann"]:
        agg = mt.GridAggregator(sampler, mode)
        ours = _aggregate(agg, sampler, 2, 6)
        assert agg._kernel
        theirs = _aggregate(tio.inference.GridAggregator(sampler, mode), sampler, 2, 6)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6 * float(theirs.abs().max()))
        # float64 / float16 first batches: TorchIO's code (its dtype rules)
        for dtype in [torch.float64, torch.float16]:
            agg = mt.GridAggregator(sampler, mode)
            ours = _aggregate(agg, sampler, 1, 8, dtype)
            assert not agg._kernel
            theirs = _aggregate(tio.inference.GridAggregator(sampler, mode), sampler, 1, 8, dtype)
            assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)


def test_grid_aggregator_off_grid_and_uncovered():
    subject = tio.Subject(im=tio.ScalarImage(tensor=torch.rand((1, 12, 10, 8))))
    sampler = tio.GridSampler(subject, (6, 5, 4), (2, 0, 0))
    rng = np.random.default_rng(18)
    for mode in ["average", "hann"]:
        ours, theirs = mt.GridAggregator(sampler, mode), tio.inference.GridAggregator(sampler, mode)
        locations = torch.tensor([[0, 0, 0, 6, 5, 4], [1, 2, 3, 7, 7, 7], [6, 5, 4, 12, 10, 8], [1, 2, 3, 7, 7, 7]])
        batch = torch.from_numpy(rng.standard_normal((4, 2, 6, 5, 4)).astype(np.float32))
        for agg in (ours, theirs):
            agg.add_batch(batch, locations)
        a, b = ours.get_output_tensor(), theirs.get_output_tensor()
        np.testing.assert_array_equal(np.isnan(a.numpy()), np.isnan(b.numpy()))   # uncovered voxels: 0 / 0
        assert np.isnan(b.numpy()).any()
        np.testing.assert_allclose(np.nan_to_num(a.numpy()), np.nan_to_num(b.numpy()), rtol=1e-6, atol=1e-6)


def test_grid_aggregator_bad_input():
    subject = tio.Subject(im=tio.ScalarImage(tensor=torch.rand((1, 12, 10, 8))))
    sampler = tio.GridSampler(subject, (6, 5, 4))
    with pytest.raises(ValueError, match="Overlap mode"):
        mt.GridAggregator(sampler, "median")
    agg = mt.GridAggregator(sampler, "average")
    good = torch.tensor([[0, 0, 0, 6, 5, 4]])
    with pytest.raises(RuntimeError, match="shape of the input batch"):
        agg.add_batch(torch.zeros((1, 1, 5, 5, 4)), good)
    ref = tio.inference.GridAggregator(sampler, "average")
    with pytest.raises(RuntimeError):
        ref.add_batch(torch.zeros((1, 1, 5, 5, 4)), good)
    agg = mt.GridAggregator(sampler, "average")
    agg.add_batch(torch.zeros((1, 1, 6, 5, 4)), good)
    with pytest.raises(ValueError, match="locations"):
        agg.add_batch(torch.zeros((2, 1, 6, 5, 4)), good)
    with pytest.raises(ValueError, match="channels"):
        agg.add_batch(torch.zeros((1, 3, 6, 5, 4)), good)
    with pytest.raises(TypeError, match="batch_tensor"):
        agg.add_batch(torch.zeros((1, 6, 5, 4)), good)


# ----------------------------------------------------------------------------- Transform options


def test_base_transform_options_and_history():
    rng = np.random.default_rng(19)
    make = lambda: _subject(rng, (12, 10, 8), 1, np.float32, _affine((1.0, 1.0, 1.0), ROT))  # noqa: E731
    base = make()
    pairs = [(mt.Resample(0.5, copy=False), tio.Resample(0.5, copy=False)),
             (mt.RescaleIntensity((-1, 1), copy=False), tio.RescaleIntensity((-1, 1), copy=False)),
             (mt.ZNormalization(copy=False), tio.ZNormalization(copy=False)),
             (mt.KeepLargestComponent(copy=False), tio.KeepLargestComponent(copy=False))]
    for ours, theirs in pairs:
        a, b = copy.deepcopy(base), copy.deepcopy(base)
        ra, rb = ours(a), theirs(b)
        _compare(a, b)       # copy=False: both write into the subject they were given
        _compare(ra, rb)
    # p=0: the input itself comes back; keep=: the original image is kept under a new name
    assert mt.RescaleIntensity(p=0)(base) is base
    out = mt.RescaleIntensity((-1, 1), keep={"ct": "ct_orig"})(base)
    assert torch.equal(out.ct_orig.data, base.ct.data) and float(out.ct.data.max()) <= 1.0
    out = tio.Compose([mt.Resample(0.5), mt.RescaleIntensity((-1, 1)), mt.RemoveSmallObjects(3),
                       mt.KeepLargestComponent()])(base)
    assert [t.name for t in out.history] == ["Resample", "RescaleIntensity", "RemoveSmallObjects",
                                            "KeepLargestComponent"]
    replay = out.get_composed_history()(base)
    _compare(replay, out, exact=True)


def test_strided_inputs():
    """Transposed (non-contiguous) image tensors give the same results as TorchIO's."""
    rng = np.random.default_rng(21)
    base = torch.from_numpy((rng.standard_normal((1, 9, 14, 12)) * 100).astype(np.float32))
    seg = torch.from_numpy((rng.random((1, 9, 14, 12)) > 0.5).astype(np.uint8))
    view, seg_view = base.permute(0, 3, 2, 1), seg.permute(0, 3, 2, 1)     # (1, 12, 14, 9), strided
    assert not view.is_contiguous()
    affine = _affine((1.0, 0.5, 2.0), ROT)
    subject = tio.Subject(ct=tio.ScalarImage(tensor=view, affine=affine), seg=tio.LabelMap(tensor=seg_view, affine=affine))
    for ours, theirs in [(mt.RescaleIntensity((-1, 1), (1, 99)), tio.RescaleIntensity((-1, 1), (1, 99))),
                         (mt.Clamp(-50, 50), tio.Clamp(-50, 50)), (mt.ZNormalization(), tio.ZNormalization()),
                         (mt.Resample((0.5, 0.25, 1.0)), tio.Resample((0.5, 0.25, 1.0))),
                         (mt.KeepLargestComponent(), tio.KeepLargestComponent()),
                         (mt.RemoveSmallObjects(2), tio.Compose([]))]:
        a, b = tio.Compose([ours])(subject), tio.Compose([theirs])(subject)
        if isinstance(ours, mt.RemoveSmallObjects):
            ref = _remove_small_reference(seg_view.numpy().astype(np.int64), 2, False)
            np.testing.assert_array_equal(a.seg.data.numpy(), ref)
            continue
        _compare(a, b, scale=1.0)
    np.testing.assert_array_equal(subject.ct.data.numpy(), view.numpy())
