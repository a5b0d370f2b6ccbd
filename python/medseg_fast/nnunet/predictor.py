"""``nnUNetPredictor`` on our kernels: nnU-Net v2's predictor class with the same constructor
arguments (``tile_step_size``, ``use_gaussian``, ``use_mirroring``, ``perform_everything_on_device``,
``device``, ``verbose``, ...), the same model loading (``initialize_from_trained_model_folder``,
``manual_initialization``) and entry points, whose sliding window, mirroring and export run through
:func:`medseg_fast.sliding_window_inference` (nnU-Net window positions and Gaussian) and
:func:`medseg_fast.nnunet.convert_predicted_logits_to_segmentation_with_correct_shape` (fused resample +
argmax). Logits are blended in float32 (nnU-Net accumulates in float16), so labels agree with the stock
predictor except where two classes are within float16 rounding of each other. Exports run in this
process (no spawn pool: the fused export is fast and needs no copy of the logits).
"""

from __future__ import annotations

import numpy as np
import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor as _StockPredictor

from ..sliding_window import sliding_window_inference
from .export import convert_predicted_logits_to_segmentation_with_correct_shape, export_prediction_from_logits
from .registry import enable

__all__ = ["nnUNetPredictor"]


class nnUNetPredictor(_StockPredictor):  # noqa: N801 - nnU-Net's class name
    """Drop-in for ``nnunetv2.inference.predict_from_raw_data.nnUNetPredictor`` (see the module docstring).

    Extra keyword: ``batch_size`` (windows per network call; default 1 on the CPU, where a 3-D U-Net
    costs more per window in larger batches — measured 1.52 s for 4 calls of 2 windows vs 1.29 s for
    8 calls of 1 with nnU-Net's PlainConvUNet on 64³ patches — and 2 on a GPU).

    Examples
    --------
    >>> from medseg_fast.nnunet import nnUNetPredictor                       # doctest: +SKIP
    >>> predictor = nnUNetPredictor(tile_step_size=0.5, use_mirroring=True,
    ...                             device=torch.device("cuda"))             # doctest: +SKIP
    >>> predictor.initialize_from_trained_model_folder(model_dir, use_folds=(0,))  # doctest: +SKIP
    >>> predictor.predict_from_files(input_dir, output_dir)                  # doctest: +SKIP
    """

    def __init__(self, tile_step_size: float = 0.5, use_gaussian: bool = True, use_mirroring: bool = True,
                 perform_everything_on_device: bool = True, device: torch.device = torch.device("cuda"),
                 verbose: bool = False, verbose_preprocessing: bool = False, allow_tqdm: bool = True, *,
                 batch_size: int | None = None):
        if not 0 < float(tile_step_size) <= 1:
            raise ValueError(f"tile_step_size must lie in (0, 1], got {tile_step_size!r}")
        super().__init__(tile_step_size, use_gaussian, use_mirroring, perform_everything_on_device, device, verbose,
                         verbose_preprocessing, allow_tqdm)
        if batch_size is None:
            batch_size = 2 if torch.device(device).type == "cuda" else 1
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        enable()   # plans written by MedsegPlanner name our functions

    def _net(self, patch: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            with torch.autocast("cuda", enabled=True):
                return self.network(patch)
        return self.network(patch)

    @torch.inference_mode()
    def predict_sliding_window_return_logits(self, input_image: torch.Tensor) -> torch.Tensor:
        """Blended logits ``(K, *spatial)`` of ``input_image`` ``(C, *spatial)`` (nnU-Net's contract)."""
        if not isinstance(input_image, torch.Tensor):
            raise TypeError(f"input_image must be a torch.Tensor, got {type(input_image).__name__}")
        if input_image.ndim != 4:
            raise ValueError(f"input_image must be (c, x, y, z), got shape {tuple(input_image.shape)}")
        self.network = self.network.to(self.device)
        self.network.eval()
        patch = tuple(int(p) for p in self.configuration_manager.patch_size)
        slices = len(patch) == input_image.ndim - 2   # a 2-D model on a 3-D volume: slices as the batch
        x = input_image.permute(1, 0, 2, 3) if slices else input_image[None]
        mirror = tuple(self.allowed_mirroring_axes) if self.use_mirroring and self.allowed_mirroring_axes else None
        on_device = self.perform_everything_on_device and self.device.type == "cuda"
        logits = sliding_window_inference(
            x, self._net, patch, overlap=1.0 - float(self.tile_step_size), batch_size=self.batch_size,
            mode="gaussian" if self.use_gaussian else "constant", sigma_scale=0.125, positions="nnunet",
            mirror_axes=mirror, device=self.device, output_device=self.device if on_device else torch.device("cpu"))
        return logits.permute(1, 0, 2, 3) if slices else logits[0]

    def predict_from_data_iterator(self, data_iterator, save_probabilities: bool = False,
                                   num_processes_segmentation_export: int | None = None):
        """nnU-Net's loop over preprocessed cases, exporting each in this process with the fused export."""
        results = []
        for preprocessed in data_iterator:
            data = preprocessed["data"]
            if isinstance(data, str):
                import os

                path = data
                data = torch.from_numpy(np.load(path))
                os.remove(path)
            logits = self.predict_logits_from_preprocessed_data(data).cpu()
            ofile, properties = preprocessed["ofile"], preprocessed["data_properties"]
            if ofile is not None:
                export_prediction_from_logits(logits, properties, self.configuration_manager, self.plans_manager,
                                              self.dataset_json, ofile, save_probabilities)
                results.append(None)
            else:
                results.append(convert_predicted_logits_to_segmentation_with_correct_shape(
                    logits, self.plans_manager, self.configuration_manager, self.label_manager, properties,
                    save_probabilities))
        if hasattr(data_iterator, "_finish"):
            data_iterator._finish()
        return results

    def predict_single_npy_array(self, input_image: np.ndarray, image_properties: dict,
                                 segmentation_previous_stage: np.ndarray = None, output_file_truncated: str = None,
                                 save_or_return_probabilities: bool = False):
        """nnU-Net's ``predict_single_npy_array`` with our sliding window and export."""
        from nnunetv2.inference.data_iterators import PreprocessAdapterFromNpy

        ppa = PreprocessAdapterFromNpy([input_image], [segmentation_previous_stage], [image_properties],
                                       [output_file_truncated], self.plans_manager, self.dataset_json,
                                       self.configuration_manager, num_threads_in_multithreaded=1,
                                       verbose=self.verbose)
        dct = next(ppa)
        logits = self.predict_logits_from_preprocessed_data(dct["data"]).cpu()
        if output_file_truncated is not None:
            export_prediction_from_logits(logits, dct["data_properties"], self.configuration_manager,
                                          self.plans_manager, self.dataset_json, output_file_truncated,
                                          save_or_return_probabilities)
            return None
        return convert_predicted_logits_to_segmentation_with_correct_shape(
            logits, self.plans_manager, self.configuration_manager, self.label_manager, dct["data_properties"],
            return_probabilities=save_or_return_probabilities)
