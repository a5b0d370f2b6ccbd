"""An nnU-Net v2 experiment planner that writes our names into plans, and the preprocessor they name.

``MedsegPlanner`` plans exactly as nnU-Net's ``ExperimentPlanner`` (same spacing, patch size,
network, ...) and then renames, in every configuration, ``resample_data_or_seg_to_shape`` to
``medseg_resample_data_or_seg_to_shape``, each normalization scheme to its ``Medseg...`` class and the
preprocessor to ``MedsegPreprocessor``; it saves ``MedsegPlans.json`` by default so stock plans are
kept. Importing this module calls :func:`medseg_fast.nnunet.enable`, so worker processes that unpickle
a ``MedsegPreprocessor`` (nnU-Net preprocesses in a spawn pool) resolve those names too.
"""

from __future__ import annotations

from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

from .normalization import NNUNET_EQUIVALENT
from .registry import enable

__all__ = ["MedsegPlanner", "MedsegPreprocessor", "rename_configuration"]

enable()

_RESAMPLING = {"resample_data_or_seg_to_shape": "medseg_resample_data_or_seg_to_shape",
               "resample_data_or_seg_to_spacing": "medseg_resample_data_or_seg_to_spacing"}


def rename_configuration(config: dict) -> dict:
    """A plans configuration with nnU-Net's default names replaced by ours (other names kept)."""
    config = dict(config)
    for key in ("resampling_fn_data", "resampling_fn_seg", "resampling_fn_probabilities"):
        if key in config:
            config[key] = _RESAMPLING.get(config[key], config[key])
    if "normalization_schemes" in config:
        config["normalization_schemes"] = [NNUNET_EQUIVALENT[n].__name__ if n in NNUNET_EQUIVALENT else n
                                           for n in config["normalization_schemes"]]
    if config.get("preprocessor_name") == "DefaultPreprocessor":
        config["preprocessor_name"] = "MedsegPreprocessor"
    return config


class MedsegPreprocessor(DefaultPreprocessor):
    """nnU-Net's ``DefaultPreprocessor``; its module enables our names in every process that loads it
    (a spawn worker unpickling it imports this module by the class path)."""


class MedsegPlanner(ExperimentPlanner):
    """nnU-Net's ``ExperimentPlanner`` writing plans that use our kernels (see the module docstring)."""

    def __init__(self, dataset_name_or_id, gpu_memory_target_in_gb: float = 8,
                 preprocessor_name: str = "MedsegPreprocessor", plans_name: str = "MedsegPlans",
                 overwrite_target_spacing=None, suppress_transpose: bool = False):
        super().__init__(dataset_name_or_id, gpu_memory_target_in_gb, preprocessor_name, plans_name,
                         overwrite_target_spacing, suppress_transpose)

    def get_plans_for_configuration(self, *args, **kwargs) -> dict:
        return rename_configuration(super().get_plans_for_configuration(*args, **kwargs))
