"""medseg_fast.nnunet pieces against nnU-Net v2's own functions and classes: resampling (data, segmentations,
separate z), normalization classes, largest-component post-processing, the name lookup switch."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nnunetv2")

from medseg_fast import nnunet as plug  # noqa: E402
from nnunetv2.postprocessing import remove_connected_components as nn_post  # noqa: E402
from nnunetv2.preprocessing.normalization import default_normalization_schemes as nn_norm  # noqa: E402
from nnunetv2.preprocessing.resampling import default_resampling as nn_res  # noqa: E402


def test_enable_makes_names_findable_and_disable_restores():
    from nnunetv2.preprocessing.resampling.utils import recursive_find_resampling_fn_by_name
    from nnunetv2.utilities import find_class_by_name

    plug.enable()
    assert plug.enabled()
    assert recursive_find_resampling_fn_by_name("medseg_resample_data_or_seg_to_shape") is \
        plug.resample_data_or_seg_to_shape
    # nnU-Net's own names still resolve to nnU-Net's objects
    assert recursive_find_resampling_fn_by_name("resample_data_or_seg_to_shape") is nn_res.resample_data_or_seg_to_shape
    plug.disable()
    try:
        assert not plug.enabled()
        assert not getattr(find_class_by_name.recursive_find_python_class, "__medseg__", False)
        with pytest.raises(RuntimeError, match="medseg_resample_data_or_seg_to_shape"):
            recursive_find_resampling_fn_by_name("medseg_resample_data_or_seg_to_shape")
    finally:
        plug.enable()
    assert plug.find("MedsegZScoreNormalization") is plug.MedsegZScoreNormalization and plug.find("nope") is None


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (4.0, 0.9, 1.1)])
def test_resample_data_matches_nnunet(rng, order, spacing):
    data = rng.normal(size=(2, 5, 11, 9)).astype(np.float32) * 100
    new_spacing = (1.7, 0.7, 1.3)
    new_shape = nn_res.compute_new_shape(data.shape[1:], spacing, new_spacing)
    for force in (None, False):
        want = nn_res.resample_data_or_seg_to_shape(data, new_shape, spacing, new_spacing, is_seg=False, order=order,
                                                    order_z=0, force_separate_z=force)
        got = plug.resample_data_or_seg_to_shape(data, new_shape, spacing, new_spacing, is_seg=False, order=order,
                                                 order_z=0, force_separate_z=force)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * float(np.abs(data).max()))
    got = plug.resample_data_or_seg_to_spacing(data, spacing, new_spacing, order=order, force_separate_z=None)
    assert got.shape == (2, *new_shape)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (5.0, 1.0, 1.0)])
def test_resample_seg_matches_nnunet(rng, spacing):
    from scipy import ndimage as ndi

    fields = ndi.gaussian_filter(rng.normal(size=(4, 6, 13, 12)), (0, 1, 2, 2))
    seg = np.argmax(fields, 0)[None].astype(np.int8)
    new_spacing = (1.3, 0.6, 0.7)
    new_shape = nn_res.compute_new_shape(seg.shape[1:], spacing, new_spacing)
    want = nn_res.resample_data_or_seg_to_shape(seg, new_shape, spacing, new_spacing, is_seg=True, order=1,
                                                force_separate_z=None)
    got = plug.resample_data_or_seg_to_shape(seg, new_shape, spacing, new_spacing, is_seg=True, order=1,
                                             force_separate_z=None)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    same = plug.resample_data_or_seg_to_shape(seg, seg.shape[1:], spacing, spacing, is_seg=True)
    assert same is seg   # nnU-Net returns the input when nothing changes


def test_resample_bad_input(rng):
    with pytest.raises(ValueError, match="data must be"):
        plug.resample_data_or_seg(rng.random((4, 5, 6)), (4, 5, 6))
    with pytest.raises(ValueError, match="new_shape"):
        plug.resample_data_or_seg(rng.random((1, 4, 5, 6)), (4, 5))


@pytest.mark.parametrize("name", ["CTNormalization", "ZScoreNormalization", "NoNormalization",
                                  "RescaleTo01Normalization", "RGBTo01Normalization"])
@pytest.mark.parametrize("use_mask", [False, True])
def test_normalization_matches_nnunet(rng, name, use_mask):
    image = (rng.random((6, 9, 8)) * 255).astype(np.float32) if name.startswith("RGB") else \
        (rng.normal(size=(6, 9, 8)) * 300 + 40).astype(np.float32)
    seg = np.where(rng.random(image.shape) < 0.3, -1, 0).astype(np.int8)
    props = {"mean": 50.0, "std": 200.0, "percentile_00_5": -500.0, "percentile_99_5": 400.0}
    stock = getattr(nn_norm, name)(use_mask_for_norm=use_mask, intensityproperties=props)
    ours = getattr(plug, "Medseg" + name)(use_mask_for_norm=use_mask, intensityproperties=props)
    assert isinstance(ours, nn_norm.ImageNormalization)
    assert ours.leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true == \
        stock.leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true
    want = stock.run(image.copy(), seg)
    got = ours.run(image.copy(), seg)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_largest_component_matches_nnunet(rng):
    from scipy import ndimage as ndi

    seg = (ndi.gaussian_filter(rng.random((14, 17, 15)), 1.2) > 0.52).astype(np.uint8)
    seg[(ndi.gaussian_filter(rng.random(seg.shape), 1.0) > 0.53)] = 2
    for labels in (1, 2, [1, 2], [(1, 2)]):
        before = seg.copy()
        want = nn_post.remove_all_but_largest_component_from_segmentation(seg, labels, background_label=0)
        got = plug.remove_all_but_largest_component_from_segmentation(seg, labels, background_label=0)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(seg, before)
    from acvl_utils.morphology.morphology_helper import remove_all_but_largest_component

    mask = seg > 0
    for conn in (None, 1, 2, 3):
        np.testing.assert_array_equal(plug.remove_all_but_largest_component(mask, conn),
                                      remove_all_but_largest_component(mask, conn))
    ties = np.zeros((5, 5, 5), bool)
    ties[0, 0, 0] = ties[4, 4, 4] = True   # two components of one voxel: both kept, as nnU-Net
    assert plug.remove_all_but_largest_component(ties).sum() == 2
    with pytest.raises(ValueError, match="connectivity"):
        plug.remove_all_but_largest_component(mask, 4)
