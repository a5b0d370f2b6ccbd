"""Datasets (nnU-Net / MSD layout), the synthetic CT phantom, fingerprint, preprocessing, patch sampling
and augmentation."""

from .augment import AugmentConfig, augment_batch
from .dataset import Case, DatasetInfo, find_cases, load_dataset
from .fingerprint import compute_fingerprint, load_case
from .phantom import LABELS, PhantomConfig, make_dataset, make_phantom
from .preprocess import load_plan, load_preprocessed, make_plan, preprocess_dataset, preprocess_image
from .sampling import PatchSampler

__all__ = [
    "AugmentConfig", "augment_batch", "Case", "DatasetInfo", "find_cases", "load_dataset", "compute_fingerprint",
    "load_case", "LABELS", "PhantomConfig", "make_dataset", "make_phantom", "load_plan", "load_preprocessed",
    "make_plan", "preprocess_dataset", "preprocess_image", "PatchSampler",
]
