"""medseg_fast: fast, exact compiled kernels for 3D medical image segmentation.

Arrays in, arrays out: numpy arrays, torch tensors (CPU or CUDA) and cupy arrays are accepted
zero-copy and results come back as the same kind on the same device.
"""

from __future__ import annotations

from . import metrics
from ._config import config, get_num_threads, set_num_threads, show_config
from ._version import __version__
from .components import (
    component_stats,
    fill_holes,
    keep_largest_per_class,
    label,
    largest_component,
    remove_small_components,
)
from .distance import distance_transform, signed_distance
from .intensity import (
    WINDOWS,
    ct_normalize,
    hu_window,
    intensity_stats,
    mr_normalize,
    multi_window,
    window_bounds,
)
from .resampling import resample, resample_labels
from .resample_fused import resample_argmax
from .sliding_window import SlidingWindow, sliding_window_inference

__all__ = [
    "__version__",
    "config",
    "show_config",
    "get_num_threads",
    "set_num_threads",
    "WINDOWS",
    "window_bounds",
    "hu_window",
    "multi_window",
    "intensity_stats",
    "ct_normalize",
    "mr_normalize",
    "label",
    "component_stats",
    "largest_component",
    "remove_small_components",
    "keep_largest_per_class",
    "fill_holes",
    "resample",
    "resample_labels",
    "resample_argmax",
    "SlidingWindow",
    "sliding_window_inference",
    "distance_transform",
    "signed_distance",
    "metrics",
]


def __getattr__(name: str):
    # Subpackages that import torch are loaded on first use, so `import medseg_fast` needs no torch.
    if name == "losses":
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
