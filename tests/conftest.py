"""Shared fixtures: real test volumes, the cuda marker, and array-kind helpers."""

from __future__ import annotations

import json
import zlib
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
    """A seeded generator per test: the seed is a stable hash (CRC-32) of the test id, so a failure
    reproduces in every run and process (Python's ``hash`` of a str is randomised per process)."""
    return np.random.default_rng(stable_seed(request.node.nodeid))


def stable_seed(text: str) -> int:
    """A 32-bit seed that depends only on `text`."""
    return zlib.crc32(text.encode("utf-8"))
