"""nnU-Net v2's export step (logits at the network grid -> segmentation on the original grid) through
:func:`medseg_fast.resample_argmax`: the same signature and result as
``nnunetv2.inference.export_prediction.convert_predicted_logits_to_segmentation_with_correct_shape``
without its ``(C, *original)`` float volume.

The fused path serves the usual case (softmax labels, no probabilities requested, a plans
``resampling_fn_probabilities`` of nnU-Net's or our ``resample_data_or_seg_to_shape`` with
``is_seg=False``): labels are the argmax of the resampled logits, as nnU-Net's, except at exact ties
(lowest class) and NaN (never wins). Region-based models and ``return_probabilities=True`` need the
probabilities themselves: they take nnU-Net's own path (with our resampling when the plans name it).
"""

from __future__ import annotations

import numpy as np

from ..resample_fused import resample_argmax

__all__ = ["convert_predicted_logits_to_segmentation_with_correct_shape", "export_prediction_from_logits"]

_FUSABLE = ("resample_data_or_seg_to_shape", "medseg_resample_data_or_seg_to_shape")


def _default_threads() -> int:
    from nnunetv2.configuration import default_num_processes

    return default_num_processes


def _fused_labels(logits, configuration_manager, current_spacing, new_spacing, new_shape):
    from nnunetv2.preprocessing.resampling.default_resampling import determine_do_sep_z_and_axis

    cfg = configuration_manager.configuration
    kw = dict(cfg.get("resampling_fn_probabilities_kwargs", {}))
    if cfg.get("resampling_fn_probabilities") not in _FUSABLE or kw.get("is_seg", False):
        return None
    if hasattr(logits, "detach"):
        logits = logits.detach().cpu()
        if str(logits.dtype) not in ("torch.float32", "torch.float64", "torch.float16", "torch.bfloat16"):
            logits = logits.float()
    else:
        logits = np.asarray(logits)
        if logits.dtype not in (np.float32, np.float64, np.float16):
            logits = logits.astype(np.float32)
    new_shape = tuple(int(n) for n in new_shape)
    if tuple(logits.shape[1:]) == new_shape:   # nnU-Net skips resampling: argmax of the logits themselves
        out = logits.argmax(0)
        return out.numpy() if hasattr(out, "numpy") else out
    threshold = kw.get("separate_z_anisotropy_threshold")
    if threshold is None:
        from nnunetv2.configuration import ANISO_THRESHOLD as threshold
    do_sep, axis = determine_do_sep_z_and_axis(kw.get("force_separate_z", False), current_spacing, new_spacing,
                                               threshold)
    labels = resample_argmax(logits, new_shape, order=int(kw.get("order", 3)), order_z=int(kw.get("order_z", 0)),
                             separate_z=int(axis) if do_sep else False)
    return labels.numpy() if hasattr(labels, "numpy") else labels


def convert_predicted_logits_to_segmentation_with_correct_shape(predicted_logits, plans_manager,
                                                                configuration_manager, label_manager,
                                                                properties_dict: dict,
                                                                return_probabilities: bool = False,
                                                                num_threads_torch: int | None = None):
    """nnU-Net's function of the same name (same arguments and return values), fused where it can be."""
    from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image
    from nnunetv2.inference import export_prediction as stock

    if num_threads_torch is None:
        num_threads_torch = _default_threads()
    if return_probabilities or label_manager.has_regions:
        return stock.convert_predicted_logits_to_segmentation_with_correct_shape(
            predicted_logits, plans_manager, configuration_manager, label_manager, properties_dict,
            return_probabilities, num_threads_torch)
    spacing_transposed = [properties_dict["spacing"][i] for i in plans_manager.transpose_forward]
    shape = properties_dict["shape_after_cropping_and_before_resampling"]
    current_spacing = configuration_manager.spacing if len(configuration_manager.spacing) == len(shape) else \
        [spacing_transposed[0], *configuration_manager.spacing]
    segmentation = _fused_labels(predicted_logits, configuration_manager, current_spacing, spacing_transposed, shape)
    if segmentation is None:   # a resampling function of someone else's: nnU-Net's path
        return stock.convert_predicted_logits_to_segmentation_with_correct_shape(
            predicted_logits, plans_manager, configuration_manager, label_manager, properties_dict,
            return_probabilities, num_threads_torch)
    dtype = np.uint8 if len(label_manager.foreground_labels) < 255 else np.uint16
    full = np.zeros(properties_dict["shape_before_cropping"], dtype=dtype)
    full = insert_crop_into_image(full, segmentation.astype(dtype, copy=False),
                                  properties_dict["bbox_used_for_cropping"])
    return full.transpose(plans_manager.transpose_backward)


def export_prediction_from_logits(predicted_array_or_file, properties_dict: dict, configuration_manager,
                                  plans_manager, dataset_json_dict_or_file, output_file_truncated: str,
                                  save_probabilities: bool = False, num_threads_torch: int | None = None) -> None:
    """nnU-Net's ``export_prediction_from_logits`` with the fused conversion."""
    from batchgenerators.utilities.file_and_folder_operations import load_json, save_pickle

    if isinstance(dataset_json_dict_or_file, str):
        dataset_json_dict_or_file = load_json(dataset_json_dict_or_file)
    label_manager = plans_manager.get_label_manager(dataset_json_dict_or_file)
    ret = convert_predicted_logits_to_segmentation_with_correct_shape(
        predicted_array_or_file, plans_manager, configuration_manager, label_manager, properties_dict,
        return_probabilities=save_probabilities, num_threads_torch=num_threads_torch)
    if save_probabilities:
        segmentation, probabilities = ret
        np.savez_compressed(output_file_truncated + ".npz", probabilities=probabilities)
        save_pickle(properties_dict, output_file_truncated + ".pkl")
    else:
        segmentation = ret
    rw = plans_manager.image_reader_writer_class()
    rw.write_seg(segmentation, output_file_truncated + dataset_json_dict_or_file["file_ending"], properties_dict)
