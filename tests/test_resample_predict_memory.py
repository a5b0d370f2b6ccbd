"""Predictor.predict_array exports through resample_argmax: on a CT-sized input (300 x 512 x 512) no
(C, *original) array is allocated (allocation spy on the kernels' allocator, and a peak-RSS cap well below
C x original x 4 bytes), and the labels equal resample(...).argmax(0) of the same probabilities."""

from __future__ import annotations

import medseg_fast._backend as backend
import numpy as np
import pytest
import torch
from medseg_fast.bench.harness import peak_extra_memory
from medseg_fast.io import Meta

CLASSES = 6


def _checkpoint(target_spacing):
    from medseg_fast.models import build_model

    plan = {"channels": ["CT"], "classes": list(range(1, CLASSES)), "num_classes": CLASSES,
            "target_spacing": list(target_spacing), "normalization": [{"scheme": "zscore"}], "mirror_axes": [0, 1, 2]}
    torch.manual_seed(0)
    model = build_model({"arch": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": CLASSES,
                         "channels": [4, 8], "blocks": 1, "deep_supervision": False})
    return {"model": model.state_dict(), "model_config": {"arch": "UNet", **model.config}, "plan": plan,
            "patch_size": [16, 16, 16]}


def test_predict_ct_sized_input_never_allocates_classes_times_original(monkeypatch):
    from medseg_fast.pipelines.predict import Predictor

    shape, spacing = (300, 512, 512), (1.0, 0.7, 0.7)
    rng = np.random.default_rng(0)
    block = rng.standard_normal((30, 64, 64), dtype=np.float32) * 50 + 40   # tiled: cheap to make
    image = np.tile(block, (10, 8, 8))
    predictor = Predictor(_checkpoint((10.0, 10.0, 10.0)), device="cpu", postprocess=False)
    sizes = []
    real_allocate = backend.allocate

    def spy(like, out_shape, dtype, **kw):
        sizes.append((tuple(out_shape), dtype))
        return real_allocate(like, out_shape, dtype, **kw)

    monkeypatch.setattr(backend, "allocate", spy)
    result = {}
    peak_mib = peak_extra_memory(lambda: result.setdefault("labels", predictor.predict_array(image, Meta.identity(spacing))))
    labels = result["labels"]
    assert labels.shape == shape and labels.dtype == np.uint8
    voxels = int(np.prod(shape))
    big = [s for s in sizes if int(np.prod(s[0])) >= 2 * voxels]
    assert not big, f"allocations of at least 2 x the original volume: {big}"
    # C x original float32 would be 1.9 GB; the input copy made by normalisation (315 MB) and two uint8 label
    # maps (75 MB each) are what may exist.
    class_volume_mib = CLASSES * voxels * 4 / 2**20
    assert peak_mib < 0.5 * class_volume_mib, f"peak extra memory {peak_mib:.0f} MiB"


def test_predict_labels_equal_resample_then_argmax(rng):
    """The fused export gives the labels of the old path (resample all probabilities, argmax)."""
    import medseg_fast as mf
    from medseg_fast.pipelines import predict as pred_mod

    predictor = pred_mod.Predictor(_checkpoint((2.0, 2.0, 2.0)), device="cpu", postprocess=False)
    image = rng.normal(size=(1, 13, 17, 15)).astype(np.float32) * 30 + 5
    meta = Meta.identity((1.3, 0.9, 1.1))
    captured = {}
    real = pred_mod.resample_argmax

    def spy(probs, out_shape, **kw):
        captured["probs"], captured["shape"], captured["kw"] = probs.clone(), out_shape, kw
        return real(probs, out_shape, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pred_mod, "resample_argmax", spy)
        labels = predictor.predict_array(image, meta)
    expected = mf.resample(captured["probs"], captured["shape"], **captured["kw"]).argmax(0).numpy()
    np.testing.assert_array_equal(labels, expected.astype(np.uint8))
    # same grid: the sliding window's argmax path, no resampling
    predictor_same = pred_mod.Predictor(_checkpoint((1.3, 0.9, 1.1)), device="cpu", postprocess=False)
    calls = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pred_mod, "resample_argmax", lambda *a, **k: calls.append(1))
        same = predictor_same.predict_array(image, meta)
    assert not calls and same.shape == image.shape[1:]
