"""Shared fixtures: real test volumes, the cuda marker, the `device` fixture and array-kind helpers,
and reproducible randomness (seeds from a stable hash of the test id; hypothesis derandomized)."""

from __future__ import annotations

import json
import os
import random
import zlib
from pathlib import Path

import numpy as np
import pytest

try:
    from hypothesis import settings
except ImportError:   # the property tests importorskip it
    settings = None
else:
    # Hypothesis draws the same examples in every run and keeps no example database (a failure
    # must reproduce from the test id alone). Settings given on a test (e.g. max_examples) inherit
    # this profile, loaded before the test modules are imported; tests/fuzz/worker.py runs in its
    # own process with its own explicit settings (seeded from the target name).
    settings.register_profile("ci", derandomize=True, database=None)
    settings.load_profile(os.environ.get("MEDSEG_HYPOTHESIS_PROFILE", "ci"))

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


@pytest.fixture(autouse=True)
def _seed_global_rngs(request):
    """Seed the global generators (``random``, legacy ``np.random``, torch) from the test id, so a test
    that draws from them (``torch.rand(...)`` without a generator) sees the same values in every run
    and whatever ran before it."""
    seed = stable_seed(request.node.nodeid)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- devices
class EmulatedCuda(str):
    """The ``cuda-emulated`` backend, as the `device` fixture's value.

    Inside it `medseg_fast._ext.emulate_cuda` is active: CPU torch tensors stand for CUDA tensors,
    so the public functions take their CUDA paths and run the CUDA drivers compiled for the CPU
    (medseg_fast._C_cuda_emu), while numpy inputs keep the CPU kernels. The value compares unequal
    to ``"cpu"`` (test bodies' ``if device != "cpu":`` device-vs-CPU checks run) but its text is
    ``"cpu"``, torch's name for where those tensors live (``x.to(device)``,
    ``torch.zeros(..., device=device)``).
    """

    def __new__(cls):
        return super().__new__(cls, "cpu")

    def __eq__(self, other):
        return isinstance(other, EmulatedCuda) or (type(other) is str and other == "cuda-emulated")

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __repr__(self):
        return "EmulatedCuda()"


#: The devices a parity body runs on; "cuda" carries the `cuda` marker, so it is collected
#: everywhere (``-m cuda`` selects it) and skipped by `pytest_collection_modifyitems` without a GPU;
#: "cuda-emulated" (marker `cuda_emulated`) runs the CUDA drivers on the CPU and is skipped only
#: when medseg_fast was built without MEDSEG_CUDA_EMULATION=ON.
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=pytest.mark.cuda),
           pytest.param("cuda-emulated", id="cuda-emulated", marks=pytest.mark.cuda_emulated)]


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda_emulated: runs the CUDA drivers on the CPU (medseg_fast._C_cuda_emu; "
                                       "skipped when it was not built)")


def emulation_or_skip():
    """The emulated CUDA module, or a clean skip when this build has none."""
    from medseg_fast import _ext

    if not _ext.cuda_emulation_built():
        pytest.skip("medseg_fast was built without MEDSEG_CUDA_EMULATION=ON (no _C_cuda_emu module)")
    return _ext.cuda_emulation_module()


@pytest.fixture(params=DEVICES)
def device(request):
    """The device a test body runs on: ``"cpu"``, ``"cuda"`` (skipped without a GPU) or an
    `EmulatedCuda` (the CUDA drivers on the CPU; skipped when not built)."""
    if request.param != "cuda-emulated":
        yield request.param
        return
    emulation_or_skip()
    from medseg_fast import _ext

    with _ext.emulate_cuda():
        yield EmulatedCuda()


def to_device(x, device: str, *, numpy_on_cpu: bool = True):
    """`x` (numpy array or torch tensor) as an input for `device`.

    On ``"cpu"`` a numpy array is returned unchanged when `numpy_on_cpu` (the test is about numpy
    inputs), else as a CPU tensor. On another device the result is a torch tensor there with the
    same shape, dtype and values, and the same strides where torch can express them (positive
    strides: sliced, transposed and Fortran-order views stay views); negative or zero strides
    are copied contiguously. Tensors are moved with ``.to(device)`` (their strides are kept).
    """
    import torch

    if isinstance(device, EmulatedCuda):   # CPU torch tensors stand for device tensors
        if isinstance(x, torch.Tensor):
            return x.cpu()
        return _strided_tensor(np.asarray(x), "cpu")
    if isinstance(x, torch.Tensor):
        return x if x.device.type == device else x.to(device)
    x = np.asarray(x)
    if device == "cpu":
        return x if numpy_on_cpu else torch.from_numpy(np.ascontiguousarray(x))
    return _strided_tensor(x, device)


def _strided_tensor(x: np.ndarray, device: str):
    """A torch copy of `x` on `device` with x's strides where torch can express them."""
    import torch

    dense = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    if dense.data_ptr() == x.__array_interface__["data"][0]:
        dense = dense.clone()   # a CPU "device" copy never shares the caller's memory
    item = x.itemsize
    strides = x.strides
    if x.size == 0 or x.ndim == 0 or any(s <= 0 or s % item for s in strides) or x.flags.c_contiguous:
        return dense
    steps = [s // item for s in strides]
    extent = 1 + sum((n - 1) * st for n, st in zip(x.shape, steps))
    base = torch.zeros(extent, dtype=dense.dtype, device=device)
    view = base.as_strided(x.shape, steps)
    view.copy_(dense)
    return view


def to_numpy(x) -> np.ndarray:
    """A result (numpy array, torch tensor on any device, cupy array) as a host numpy array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    if hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def assert_on_device(out, device: str, like=None) -> None:
    """`out` is of the array kind the API promises for an input on `device`: for ``"cpu"`` the kind
    of `like` (numpy by default), for another device a torch tensor on it."""
    if device == "cpu" and not isinstance(device, EmulatedCuda):
        kind = np.ndarray if like is None or isinstance(like, np.ndarray) else type(like)
        assert isinstance(out, kind), f"expected {kind.__name__}, got {type(out).__name__}"
        return
    import torch

    where = "cpu" if isinstance(device, EmulatedCuda) else device
    assert isinstance(out, torch.Tensor), f"expected a torch tensor on {where}, got {type(out).__name__}"
    assert out.device.type == where, f"expected a tensor on {where}, got one on {out.device}"
