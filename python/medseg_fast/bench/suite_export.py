"""Benchmark suite ``export``: many-class export (logits at the network grid -> labels on the original grid).

Case: 105 classes (TotalSegmentator-sized), float32 logits 105 x 160^3 at 1.5 mm isotropic back to
(2.0, 0.8, 0.8) mm = 120 x 300 x 300 (``--quick``: 105 x 64^3 -> 48 x 120 x 120). Implementations:

* ours: :func:`medseg_fast.resample_argmax` (fused, output tiles, no (C, *out) array);
* nnU-Net: ``convert_predicted_logits_to_segmentation_with_correct_shape`` with its default plans
  (``resample_data_or_seg_to_shape``, order 1, skimage per channel in float64), one run (it holds
  C x out x 12 bytes);
* resample-then-argmax: :func:`medseg_fast.resample` of all classes, then ``argmax``.

Labels are checked against ours first (agreement fraction in the note). Peak extra memory is RSS above
the start (the input excluded), so the target "label volume + 10%" reads directly off the table.
"""

from __future__ import annotations

import numpy as np

from .harness import Row, measure, peak_extra_memory, rows_for_case

NAME = "export"
DESCRIPTION = "resample_argmax vs nnU-Net's export and resample-then-argmax (105 classes)"
CLASSES = 105


def _nnunet_export(logits: np.ndarray, out_shape, spacing, new_spacing):
    """A callable running nnU-Net's export on `logits` with minimal default plans, or None without nnunetv2."""
    try:
        from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    except ImportError:
        return None
    config = {"data_identifier": "x", "preprocessor_name": "DefaultPreprocessor", "spacing": list(spacing),
              "architecture": {"network_class_name": "x", "arch_kwargs": {}, "_kw_requires_import": []},
              "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
              "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                     "force_separate_z": None}}
    plans = {"dataset_name": "x", "plans_name": "x", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
             "configurations": {"3d_fullres": config}, "image_reader_writer": "SimpleITKIO",
             "label_manager": "LabelManager", "original_median_spacing_after_transp": list(spacing)}
    pm = PlansManager(plans)
    cm = pm.get_configuration("3d_fullres")
    lm = pm.get_label_manager({"labels": {"background": 0, **{f"c{i}": i for i in range(1, logits.shape[0])}}})
    props = {"spacing": list(new_spacing), "shape_after_cropping_and_before_resampling": list(out_shape),
             "shape_before_cropping": list(out_shape), "bbox_used_for_cropping": [[0, n] for n in out_shape]}
    return lambda: convert_predicted_logits_to_segmentation_with_correct_shape(logits, pm, cm, lm, props,
                                                                               num_threads_torch=2)


def run(device: str = "cpu", quick: bool = False) -> list[Row]:
    import medseg_fast as mf

    mf.set_num_threads(2)
    n = 64 if quick else 160
    spacing, new_spacing = (1.5, 1.5, 1.5), (2.0, 0.8, 0.8)
    rng = np.random.default_rng(0)
    from scipy import ndimage as ndi

    # smooth class fields (a real network's logits are smooth), float32
    coarse = rng.standard_normal((CLASSES, n // 8, n // 8, n // 8)).astype(np.float32)
    logits = mf.resample(ndi.gaussian_filter(coarse, (0, 1, 1, 1)) * 8, (n, n, n), order=3)
    out_shape = tuple(int(round(s / t * n)) for s, t in zip(spacing, new_spacing))
    ours = mf.resample_argmax(logits, out_shape, spacing=spacing, new_spacing=new_spacing, order=1)
    impls = {"medseg_fast resample_argmax": lambda: mf.resample_argmax(logits, out_shape, spacing=spacing,
                                                                         new_spacing=new_spacing, order=1)}
    notes = {}
    full = lambda: mf.resample(logits, out_shape, spacing=spacing, new_spacing=new_spacing, order=1).argmax(0)  # noqa: E731
    notes["medseg_fast resample then argmax"] = f"agreement {np.mean(full() == ours):.6f}"
    impls["medseg_fast resample then argmax"] = full
    nn = _nnunet_export(logits, out_shape, spacing, new_spacing)
    if nn is not None:
        notes["nnU-Net convert_predicted_logits..."] = f"agreement {np.mean(nn() == ours):.6f}"
        impls["nnU-Net convert_predicted_logits..."] = nn
    memory = {name: peak_extra_memory(fn) for name, fn in impls.items()}
    timings = {}
    fast = {k: v for k, v in impls.items() if not k.startswith("nnU-Net")}
    timings.update(measure(fast, warmup=1, repeats=3 if quick else 2))
    if nn is not None:   # the slow peer: one timed run (it was run twice above already)
        timings.update(measure({"nnU-Net convert_predicted_logits...": nn}, warmup=0, repeats=1))
    label_mib = ours.nbytes / 2**20
    notes["medseg_fast resample_argmax"] = f"label volume {label_mib:.1f} MiB; logits {logits.nbytes / 2**20:.0f} MiB"
    case = f"{CLASSES} classes {logits.shape[1:]}@1.5mm -> {out_shape}@(2.0,0.8,0.8)"
    return rows_for_case(NAME, case, timings, ours="medseg_fast resample_argmax", voxels=int(np.prod(out_shape)),
                         memory=memory, notes=notes)
