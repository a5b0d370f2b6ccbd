"""MONAI MetaTensors through the shape-preserving functions keep their meta (medseg_fast._meta).

The obvious glue, ``Lambdad(keys, medseg_fast.hu_window)``, used to reset the affine to identity.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
monai = pytest.importorskip("monai")
from monai.data import MetaTensor  # noqa: E402
from monai.transforms import Compose, Flipd, Lambdad  # noqa: E402

import medseg_fast as mf  # noqa: E402

AFFINE = torch.tensor([[0.0, -0.8, 0.0, 12.0], [0.9, 0.0, 0.0, -3.0], [0.0, 0.0, 2.5, 40.0], [0.0, 0.0, 0.0, 1.0]],
                      dtype=torch.float64)

FUNCTIONS = {
    "hu_window": (lambda t: mf.hu_window(t, 40.0, 400.0), "ct"),
    "ct_normalize": (lambda t: mf.ct_normalize(t), "ct"),
    "mr_normalize": (lambda t: mf.mr_normalize(t), "ct"),
    "label": (lambda t: mf.label(t, 26), "mask"),
    "largest_component": (lambda t: mf.largest_component(t), "mask"),
    "remove_small_components": (lambda t: mf.remove_small_components(t, 4), "mask"),
    "keep_largest_per_class": (lambda t: mf.keep_largest_per_class(t), "labels"),
    "fill_holes": (lambda t: mf.fill_holes(t), "mask"),
    "distance_transform": (lambda t: mf.distance_transform(t), "mask"),
    "signed_distance": (lambda t: mf.signed_distance(t), "mask"),
}


def _image(kind: str, seed: int = 0) -> MetaTensor:
    rng = np.random.default_rng(seed)
    shape = (13, 17, 7)
    if kind == "ct":
        data = torch.from_numpy(rng.normal(0, 300, shape).astype(np.int16))
    elif kind == "mask":
        data = torch.from_numpy(rng.random(shape) < 0.4)
    else:
        data = torch.from_numpy(rng.integers(0, 4, shape).astype(np.uint8))
    return MetaTensor(data, affine=AFFINE.clone(), meta={"filename_or_obj": f"case_{seed}.nii.gz", "spacing": 0.8})


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_lambdad_keeps_the_affine_and_meta(name):
    fn, kind = FUNCTIONS[name]
    image = _image(kind)
    before_meta = dict(image.meta)
    before_data = image.as_tensor().clone()
    out = Compose([Flipd("img", spatial_axis=0), Lambdad("img", fn)])({"img": image})["img"]
    assert isinstance(out, MetaTensor)
    flipped = Flipd("img", spatial_axis=0)({"img": _image(kind)})["img"]
    torch.testing.assert_close(out.affine, flipped.affine)                 # the flip's affine, not identity
    assert out.meta["filename_or_obj"] == "case_0.nii.gz"
    assert [op["class"] for op in out.applied_operations] == \
        [op["class"] for op in flipped.applied_operations] + ["Lambda"]   # the history goes on
    expected = fn(flipped.as_tensor())                                       # the values are the plain call's
    np.testing.assert_array_equal(np.asarray(out.as_tensor()), np.asarray(expected))
    # the caller's input is untouched, meta included
    assert torch.equal(image.as_tensor(), before_data) and torch.equal(image.affine, AFFINE)
    assert image.meta.keys() == before_meta.keys() and image.applied_operations == []


def test_result_meta_is_a_copy():
    image = _image("ct")
    out = mf.hu_window(image, 40.0, 400.0)
    out.meta["filename_or_obj"] = "changed"
    out.applied_operations.append({"class": "X"})
    assert image.meta["filename_or_obj"] == "case_0.nii.gz" and image.applied_operations == []


def test_out_argument_and_other_shapes_are_returned_as_they_are():
    image = _image("ct")
    out = torch.empty(image.shape, dtype=torch.float32)
    assert mf.hu_window(image, 40.0, 400.0, out=out) is out
    stack = mf.multi_window(image, ["lung", "bone"])
    assert type(stack) is torch.Tensor                                        # (2, *spatial): not the input's grid
    labels, count = mf.label(_image("mask"), 6, return_num=True)
    assert isinstance(labels, MetaTensor) and isinstance(count, int)


def test_plain_inputs_stay_plain():
    assert type(mf.hu_window(torch.zeros(4, 5), 40.0, 400.0)) is torch.Tensor
    assert isinstance(mf.hu_window(np.zeros((4, 5), np.int16), 40.0, 400.0), np.ndarray)
