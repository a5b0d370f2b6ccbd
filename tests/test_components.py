"""Parity tests of the connected-components family against scipy, cc3d, MONAI and the reference."""

from __future__ import annotations

import medseg_fast as mf
import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import assert_on_device, load_volume, to_device, to_numpy
from medseg_fast import _components_prep as prep
from medseg_fast.reference import components as R

cc3d = pytest.importorskip("cc3d")

RANK = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}
CONNS = {2: (4, 8), 3: (6, 18, 26)}


def scipy_label(x, connectivity):
    return ndi.label(x, ndi.generate_binary_structure(x.ndim, RANK[connectivity]))


def canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber a labeling 1..N in raster order of each label's first voxel (0 stays 0)."""
    flat = labels.ravel()
    values, first = np.unique(flat, return_index=True)
    order = np.argsort(first)
    mapping = np.zeros(values.size, np.int64)
    rank = 1
    for i in order:
        if values[i] != 0:
            mapping[i] = rank
            rank += 1
    return mapping[np.searchsorted(values, flat)].reshape(labels.shape)


def blobs(rng, shape, frac, sigma=1.5):
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    return f > np.quantile(f, 1 - frac)


def random_shape(rng, ndim):
    choices = [1, 2, 3, 5, 7, 11, 13, 17, 23, 31]
    return tuple(int(rng.choice(choices)) for _ in range(ndim))


@pytest.fixture(params=[1, 2, 5])
def threads(request):
    """Thread count, with tiny slabs so that small inputs are split into many slabs too."""
    from medseg_fast import _C

    old = mf.get_num_threads()
    mf.set_num_threads(request.param)
    _C._set_min_slab_voxels(1)
    yield request.param
    _C._set_min_slab_voxels(0)
    mf.set_num_threads(old)


# ----------------------------------------------------------------------------- label vs scipy
# Shapes beyond random_shape's range: one voxel, and a volume of many GPU blocks per axis.
FIXED_SHAPES = {2: [(29, 37)], 3: [(1, 1, 1), (7, 1, 13), (17, 31, 23), (40, 64, 70)]}


@pytest.mark.parametrize("ndim", [2, 3])
def test_label_equals_scipy_on_noise(rng, ndim, threads, device):
    for _ in range(40):
        shape = random_shape(rng, ndim)
        x = rng.random(shape) < rng.choice([0.05, 0.3, 0.5, 0.7, 0.95])
        for conn in CONNS[ndim]:
            ours, n = mf.label(to_device(x, device), conn, return_num=True)
            assert_on_device(ours, device)
            ours = to_numpy(ours)
            ref, m = scipy_label(x, conn)
            assert ours.dtype == np.int32
            assert ours.shape == x.shape
            assert n == m
            np.testing.assert_array_equal(ours, ref)
    for shape in FIXED_SHAPES[ndim]:
        for density in (0.1, 0.5, 0.9):
            x = rng.random(shape) < density
            for conn in CONNS[ndim]:
                ours, n = mf.label(to_device(x, device), conn, return_num=True)
                assert_on_device(ours, device)
                ref, m = scipy_label(x, conn)
                assert n == m
                np.testing.assert_array_equal(to_numpy(ours), ref)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int32, np.uint64, np.int64])
def test_label_integer_binary_equals_scipy(rng, dtype):
    x = blobs(rng, (19, 40, 33), 0.3, 1.0).astype(dtype)
    for conn in (6, 18, 26):
        ours, n = mf.label(x, conn, return_num=True)
        ref, m = scipy_label(x, conn)
        assert n == m
        np.testing.assert_array_equal(ours, ref)


def test_label_blobs_spirals_and_wide_rows(rng, threads):
    # Long rows (> 8 voxels, the byte fast path), blobs, a 3-D spiral that joins far-apart slabs.
    x = blobs(rng, (40, 61, 130), 0.4)
    t = np.linspace(0, 6 * np.pi, 4000)
    spiral = np.zeros((40, 64, 64), bool)
    spiral[(t / t.max() * 39).astype(int), (32 + 28 * np.sin(t)).astype(int), (32 + 28 * np.cos(t)).astype(int)] = True
    for volume in (x, spiral, ~x):
        for conn in (6, 18, 26):
            ours = mf.label(volume.astype(np.uint8), conn)
            np.testing.assert_array_equal(ours, scipy_label(volume, conn)[0])


@pytest.mark.parametrize("width", [63, 64, 65, 128, 130, 200])
def test_label_bit_plane_rows_on_noise(rng, width, threads):
    # Rows scanned 64 voxels per word (byte inputs) with a scalar tail, the O(1) rank lookup of
    # touching runs and the short-run writer (rows with many runs): noise of every density,
    # word-aligned and unaligned widths, bool/uint8 (byte path), int16 and a strided view
    # (scalar path), against scipy; and inverted masks (fill_holes) on the same rows.
    for p in (0.05, 0.3, 0.5, 0.7, 0.97):
        x = rng.random((5, 7, width)) < p
        x[1, 3, :] = True   # a full row
        x[2, :, 60:] = False   # empty words and a run that ends at a word edge
        for conn in (6, 18, 26):
            ref = scipy_label(x, conn)[0]
            for arr in (x, x.astype(np.uint8), x.astype(np.int16) * 7):
                np.testing.assert_array_equal(mf.label(arr, conn), ref)
            wide = np.zeros((5, 7, 2 * width), np.uint8)
            wide[..., ::2] = x
            np.testing.assert_array_equal(mf.label(wide[..., ::2], conn), ref)
        np.testing.assert_array_equal(mf.fill_holes(x), ndi.binary_fill_holes(x))
        np.testing.assert_array_equal(mf.label(x[0], 8), scipy_label(x[0], 8)[0])


@pytest.mark.parametrize("width", [64, 97])
def test_multilabel_short_runs_equal_reference(rng, width, threads):
    # Multi-label noise: runs split where the value changes inside the foreground (byte and
    # scalar paths); the value check starts only once a second value appears.
    for dtype in (np.uint8, np.int32):
        x = rng.integers(0, 3, (4, 6, width)).astype(dtype)
        x[:2] = (x[:2] > 0) * 2   # the first rows hold a single value
        for conn in (6, 26):
            ours, n = mf.label(x, conn, return_num=True)
            ref, m = R.label(x, conn)
            assert n == m
            np.testing.assert_array_equal(ours, ref)


def test_largest_and_small_components_on_noise(rng, threads, device):
    x = (rng.random((6, 9, 70)) < 0.25).astype(np.uint8)
    xd = to_device(x, device)
    for conn in (6, 26):
        np.testing.assert_array_equal(to_numpy(mf.remove_small_components(xd, 3, connectivity=conn)),
                                      cc3d.dust(x, 3, connectivity=conn))
        sizes = np.bincount(scipy_label(x, conn)[0].ravel())[1:]
        if np.sum(sizes == sizes.max()) == 1:
            np.testing.assert_array_equal(to_numpy(mf.largest_component(xd, connectivity=conn)) > 0,
                                          cc3d.largest_k(x, 1, connectivity=conn) > 0)


def test_label_empty_full_and_degenerate():
    for shape in [(0, 4, 5), (3, 0, 2), (4, 5, 0), (0, 0)]:
        out, n = mf.label(np.zeros(shape, bool), return_num=True)
        assert out.shape == shape
        assert out.dtype == np.int32
        assert n == 0
    for shape in [(1, 1, 1), (1, 7, 1), (9, 1, 1), (5, 6, 7), (1, 1)]:
        out, n = mf.label(np.zeros(shape, bool), return_num=True)
        assert n == 0
        assert not out.any()
        out, n = mf.label(np.ones(shape, np.uint8), return_num=True)
        assert n == 1
        assert (out == 1).all()


def test_label_strided_transposed_and_torch(rng, device):
    # On a GPU the views keep their strides where torch can (not the negative steps).
    base = rng.random((30, 41, 50)) < 0.4
    views = [base[::2, 1::3, ::-1], base.transpose(2, 0, 1), np.asfortranarray(base), base[:, 5, :],
             base.astype(np.uint16)[::-1, :, ::2]]
    for v in views:
        for conn in CONNS[v.ndim]:
            np.testing.assert_array_equal(to_numpy(mf.label(to_device(v, device), conn)),
                                          scipy_label(np.ascontiguousarray(v), conn)[0])
    torch = pytest.importorskip("torch")
    t = to_device(torch.from_numpy(base), device).permute(1, 2, 0)
    out = mf.label(t)
    assert isinstance(out, torch.Tensor)
    assert out.device == t.device
    assert out.dtype == torch.int32
    np.testing.assert_array_equal(to_numpy(out), scipy_label(to_numpy(t), 26)[0])


def test_label_thread_count_independent(rng):
    from medseg_fast import _C

    x = (rng.random((37, 53, 29)) < 0.5).astype(np.uint8) * rng.integers(1, 3, (37, 53, 29)).astype(np.uint8)
    old = mf.get_num_threads()
    try:
        results = []
        for t, slab in ((1, 0), (2, 1), (3, 1), (8, 1), (8, 2000), (2, 0)):
            mf.set_num_threads(t)
            _C._set_min_slab_voxels(slab)
            results.append([mf.label(x, c) for c in (6, 18, 26)])
            results[-1].append(mf.largest_component(x, 3))
            results[-1].append(mf.fill_holes(x))
    finally:
        mf.set_num_threads(old)
        _C._set_min_slab_voxels(0)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_label_background_kwarg(rng):
    x = rng.integers(0, 3, (9, 14, 12)).astype(np.int16)
    ours = mf.label(x, 6, background=2)
    ref, _ = R.label(x, 6, background=2)
    np.testing.assert_array_equal(ours, ref)
    b = rng.random((6, 7, 8)) < 0.5
    np.testing.assert_array_equal(mf.label(b, background=True), scipy_label(~b, 26)[0])


# ----------------------------------------------------------------------------- multi-label
@pytest.mark.parametrize("ndim", [2, 3])
def test_multilabel_equals_reference(rng, ndim, threads, device):
    for _ in range(3):
        shape = random_shape(rng, ndim)
        x = rng.integers(0, 4, shape).astype(rng.choice([np.uint8, np.int16, np.uint32]))
        for conn in CONNS[ndim]:
            ours, n = mf.label(to_device(x, device), conn, return_num=True)
            ref, m = R.label(x, conn)
            assert n == m
            np.testing.assert_array_equal(to_numpy(ours), ref)
    # strided and transposed multi-label views equal the labels of their contiguous copies
    x = ndi.median_filter(rng.integers(0, 4, (30, 40, 50)).astype(np.uint8), 3)
    x = x[:, :, 0] if ndim == 2 else x
    for view in (x, x.T, x[::2, ..., ::-1], x[1::3, ..., ::2]):
        np.testing.assert_array_equal(to_numpy(mf.label(to_device(view, device))),
                                      mf.label(np.ascontiguousarray(view)))


def test_multilabel_equals_cc3d_after_renumbering(rng, threads):
    x = (ndi.gaussian_filter(rng.standard_normal((24, 50, 45)), 1.5) * 6).astype(np.int8)
    x[np.abs(x) < 1] = 0
    for conn in (6, 18, 26):
        ours, n = mf.label(x, conn, return_num=True)
        theirs, m = cc3d.connected_components(x, connectivity=conn, return_N=True)
        assert n == m
        np.testing.assert_array_equal(ours, canonical(theirs))


def test_real_label_maps():
    atlas, _ = load_volume("dk_atlas_mni_1mm.nii.gz")
    ours, n = mf.label(atlas, 26, return_num=True)
    theirs, m = cc3d.connected_components(atlas, connectivity=26, return_N=True)
    assert n == m > 83
    np.testing.assert_array_equal(ours, canonical(theirs))
    tumour, _ = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    for conn in (6, 26):
        np.testing.assert_array_equal(mf.label(tumour, conn), scipy_label(tumour > 0, conn)[0])


# ----------------------------------------------------------------------------- statistics
def test_component_stats_equals_cc3d_and_reference(rng):
    x = blobs(rng, (17, 30, 26), 0.3, 1.0)
    labels = mf.label(x, 26)
    ours = mf.component_stats(labels, spacing=(2.0, 0.5, 0.75))
    theirs = cc3d.statistics(labels)
    np.testing.assert_array_equal(ours["sizes"], theirs["voxel_counts"])
    np.testing.assert_allclose(ours["volumes_mm3"], theirs["voxel_counts"] * 0.75)
    np.testing.assert_allclose(ours["centroids"], theirs["centroids"], rtol=1e-12, atol=1e-9)
    for i, box in enumerate(theirs["bounding_boxes"]):
        assert ours["bboxes"][i].tolist() == [s.start for s in box] + [s.stop for s in box]
    ref = R.component_stats(labels, spacing=(2.0, 0.5, 0.75))
    for key in ("sizes", "volumes_mm3", "bboxes"):
        np.testing.assert_array_equal(ours[key], ref[key])
    np.testing.assert_allclose(ours["centroids"], ref["centroids"], rtol=1e-12)


def test_component_stats_gaps_2d_and_threads(rng):
    labels = np.zeros((40, 33), np.uint16)
    labels[3:9, 4:6] = 5
    labels[20, 30] = 2
    ours = mf.component_stats(labels)
    ref = R.component_stats(labels)
    assert ours["sizes"].tolist() == ref["sizes"].tolist() == [40 * 33 - 13, 0, 1, 0, 0, 12]
    assert np.isnan(ours["centroids"][1]).all()
    assert ours["bboxes"][1].tolist() == [0, 0, 0, 0]
    np.testing.assert_array_equal(ours["bboxes"], ref["bboxes"])
    big = mf.label(rng.random((30, 40, 50)) < 0.3)
    old = mf.get_num_threads()
    try:
        mf.set_num_threads(1)
        a = mf.component_stats(big)
        mf.set_num_threads(2)
        b = mf.component_stats(big)
    finally:
        mf.set_num_threads(old)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


# ----------------------------------------------------------------------------- postprocessing
def test_largest_component_equals_cc3d(rng):
    checked = 0
    for trial in range(12):
        x = blobs(rng, (15, 28, 31), rng.choice([0.05, 0.2]), 1.0)
        labels, n = mf.label(x, 26, return_num=True)
        sizes = np.bincount(labels.ravel())[1:]
        for k in (0, 1, 2, 3):
            ours = mf.largest_component(x, k)
            assert ours.dtype == bool
            if trial < 2 and k in (1, 2):
                np.testing.assert_array_equal(ours, R.largest_component(x, k))
            ordered = np.sort(sizes)[::-1]
            if k == 0 or k >= n or ordered[k - 1] != ordered[k]:   # no tie at the k-th place
                np.testing.assert_array_equal(ours, cc3d.largest_k(x, k, connectivity=26) > 0)
                checked += 1
    assert checked > 10


def test_largest_component_ties_pick_first_in_raster_order():
    x = np.zeros((1, 3, 9), np.uint8)
    x[0, 0, 0:2] = 1
    x[0, 2, 4:6] = 1
    x[0, 0, 7:9] = 1
    out = mf.largest_component(x, 2, connectivity=6)
    assert out[0, 0, 0:2].all()
    assert out[0, 0, 7:9].all()
    assert not out[0, 2].any()


def test_remove_small_components_equals_cc3d_dust(rng):
    x = blobs(rng, (20, 35, 30), 0.1, 0.8).astype(np.uint8) * rng.integers(1, 3, (20, 35, 30)).astype(np.uint8)
    for threshold in (1, 5, 20, 100):
        for conn in (6, 26):
            ours = mf.remove_small_components(x, threshold, connectivity=conn)
            np.testing.assert_array_equal(ours, cc3d.dust(x, threshold, connectivity=conn))
    spacing = (2.0, 1.0, 0.5)
    ours = mf.remove_small_components(x, 10.0, spacing=spacing)
    np.testing.assert_array_equal(ours, cc3d.dust(x, 10, connectivity=26))   # 1 mm^3 voxels
    np.testing.assert_array_equal(ours, R.remove_small_components(x, 10.0, spacing))


def test_keep_largest_per_class_equals_monai_and_reference(rng, device):
    monai = pytest.importorskip("monai.transforms")
    torch = pytest.importorskip("torch")
    x = rng.integers(0, 4, (8, 14, 12)).astype(np.uint8)
    x = ndi.median_filter(x, 3)
    for classes in (None, [1, 3]):
        ours = mf.keep_largest_per_class(to_device(x, device), classes, 26)
        assert_on_device(ours, device)
        ours = to_numpy(ours)
        np.testing.assert_array_equal(ours, R.keep_largest_per_class(x, classes, 26))
        applied = [1, 2, 3] if classes is None else classes
        t = monai.KeepLargestConnectedComponent(applied_labels=applied, independent=True, connectivity=3)
        theirs = t(torch.from_numpy(x[None].astype(np.int64)))[0].numpy()
        # MONAI breaks size ties its own way; compare where no class has a tie for largest.
        ties = False
        for c in applied:
            lab = mf.label(x == c, 26)
            s = np.sort(np.bincount(lab.ravel())[1:])
            ties |= len(s) > 1 and s[-1] == s[-2]
        if not ties:
            np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("ndim", [2, 3])
def test_fill_holes_equals_scipy(rng, ndim, threads, device):
    def fill(a, *args):
        out = mf.fill_holes(to_device(a, device), *args)
        assert_on_device(out, device)
        return to_numpy(out)

    for _ in range(15):
        shape = random_shape(rng, ndim)
        x = rng.random(shape) < rng.choice([0.3, 0.6, 0.8])
        np.testing.assert_array_equal(fill(x), ndi.binary_fill_holes(x))
        np.testing.assert_array_equal(fill(x.astype(np.int16) * 3), ndi.binary_fill_holes(x))
    x = rng.random((9, 10, 11) if ndim == 3 else (20, 21)) < 0.7
    conn = 26 if ndim == 3 else 8
    np.testing.assert_array_equal(fill(x, conn), R.fill_holes(x, conn))
    structure = ndi.generate_binary_structure(ndim, ndim)
    np.testing.assert_array_equal(fill(x, conn), ndi.binary_fill_holes(x, structure))


def test_postprocessing_on_real_volumes():
    atlas, spacing = load_volume("dk_atlas_mni_1mm.nii.gz")
    kept = mf.keep_largest_per_class(atlas)
    assert set(np.unique(kept)) == set(np.unique(atlas))
    for c in (2, 17, 41):
        assert mf.label(kept == c, return_num=True)[1] == 1
    np.testing.assert_array_equal(mf.remove_small_components(atlas, 50), cc3d.dust(atlas, 50, connectivity=26))
    tumour, spacing = load_volume("ct_chest_lung2_crop_tumor_label.nii.gz")
    np.testing.assert_array_equal(mf.fill_holes(tumour), ndi.binary_fill_holes(tumour))
    np.testing.assert_array_equal(mf.largest_component(tumour > 0), cc3d.largest_k(tumour > 0, 1) > 0)


def test_inputs_not_modified(rng, device):
    x = (rng.random((8, 9, 10)) < 0.5).astype(np.uint8) * 2
    copy = x.copy()
    xd = to_device(x, device)
    mf.label(xd)
    mf.largest_component(xd)
    mf.remove_small_components(xd, 3)
    mf.keep_largest_per_class(xd)
    mf.fill_holes(xd)
    mf.component_stats(xd)
    np.testing.assert_array_equal(to_numpy(xd), copy)



@pytest.mark.cuda
def test_cupy_in_cupy_out(rng):
    # No CPU counterpart: cupy arrays live on the GPU (torch tensors on both devices are covered above).
    cupy = pytest.importorskip("cupy")
    x = rng.random((20, 21, 22)) < 0.4
    out = mf.label(cupy.asarray(x))
    assert isinstance(out, cupy.ndarray)
    np.testing.assert_array_equal(out.get(), mf.label(x))


# ----------------------------------------------------------------------------- bad input
def test_errors():
    with pytest.raises(TypeError, match="threshold it first"):
        mf.label(np.zeros((3, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"connectivity must be one of \(6, 18, 26\) for a 3-D array, got 8"):
        mf.label(np.zeros((3, 3, 3), bool), 8)
    with pytest.raises(ValueError, match=r"connectivity must be one of \(4, 8\) for a 2-D array, got 26"):
        mf.label(np.zeros((3, 3), bool), 26)
    with pytest.raises(ValueError, match="must be a 2-D or 3-D array, got ndim=4"):
        mf.label(np.zeros((2, 3, 3, 3), bool))
    with pytest.raises(ValueError, match="must be a 2-D or 3-D array, got ndim=1"):
        mf.fill_holes(np.zeros(3, bool))
    with pytest.raises(ValueError, match="background must be an integer representable"):
        mf.label(np.zeros((3, 3), np.uint8), 4, background=300)
    with pytest.raises(ValueError, match="k must be a non-negative integer"):
        mf.largest_component(np.zeros((3, 3, 3), bool), -1)
    with pytest.raises(ValueError, match="min_size must be a finite number"):
        mf.remove_small_components(np.zeros((3, 3, 3), bool), float("nan"))
    with pytest.raises(ValueError, match="spacing must have 3 positive values"):
        mf.remove_small_components(np.zeros((3, 3, 3), bool), 2, spacing=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="labels must be non-negative"):
        mf.component_stats(np.full((2, 2), -1, np.int8))
    with pytest.raises(TypeError, match="labels must be a bool or integer array"):
        mf.component_stats(np.zeros((2, 2), np.float64))


def test_int32_overflow_is_an_error(monkeypatch):
    x = np.zeros((1, 1, 20), bool)
    x[0, 0, ::2] = True   # 10 components
    monkeypatch.setattr(prep, "_MAX_LABEL", 9)
    with pytest.raises(OverflowError, match="do not fit the int32 label type"):
        mf.label(x)
    monkeypatch.setattr(prep, "_MAX_LABEL", 10)
    assert mf.label(x, return_num=True)[1] == 10


# ----------------------------------------------------------------------------- properties
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 7), st.integers(1, 9)),
              elements=st.integers(0, 3)),
       st.permutations([1, 2, 3]), st.sampled_from([6, 18, 26]))
def test_labels_invariant_under_value_permutation(x, perm, conn):
    lut = np.array([0, *perm], np.uint8)
    np.testing.assert_array_equal(mf.label(x, conn), mf.label(lut[x], conn))


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 6), st.integers(1, 7), st.integers(1, 9))),
       st.sampled_from([6, 18, 26]))
def test_relabeling_a_result_changes_nothing(x, conn):
    labels, n = mf.label(x, conn, return_num=True)
    again, m = mf.label(labels, conn, return_num=True)
    assert n == m
    np.testing.assert_array_equal(labels, again)
    np.testing.assert_array_equal(labels, scipy_label(x, conn)[0])
    sizes = mf.component_stats(labels)["sizes"]
    assert sizes[1:].sum() == x.sum()
    assert (sizes[1:] > 0).all()
