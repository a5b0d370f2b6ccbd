"""Shared fixtures: real test volumes, the cuda marker, and array-kind helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


def load_volume(name: str) -> tuple[np.ndarray, tuple[float, ...]]:
    """A test volume as a numpy array in (z, y, x) order and its spacing in the same order (mm)."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(DATA / name))
    array = sitk.GetArrayFromImage(image)
    return array, tuple(float(s) for s in reversed(image.GetSpacing()))


def manifest() -> list[dict]:
    return json.loads((DATA / "MANIFEST.json").read_text())


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    if not torch.cuda.is_available():
        return False
    from medseg_fast import _ext

    return _ext.cuda_built()


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and medseg_fast built with CUDA")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng(request):
    """A seeded generator per test (seed derived from the test name, so failures reproduce)."""
    seed = abs(hash(request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)
