"""The CUDA drivers run on the CPU (medseg_fast._C_cuda_emu, csrc/emu/README.md).

Three groups:

* probes of the three HIP-CPU defects that csrc/emu/cuda_runtime.h works around, so an update of
  HIP-CPU or of the mapping header cannot bring one back unnoticed;
* launch shapes: every kernel family runs under several caps on blocks per grid and threads per
  block and must give bit-identical results. The emulator runs a block's threads in turn, so a race
  between threads stays hidden; a result that depends on the block or grid shape is what a race or a
  wrong grid-stride loop looks like here;
* coverage: every driver file in csrc/cuda has a case below that launches its kernels.

All skip cleanly when the module was not built (MEDSEG_CUDA_EMULATION=OFF).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import emulation_or_skip

torch = pytest.importorskip("torch")

import medseg_fast as mf  # noqa: E402
from medseg_fast import _ext  # noqa: E402

CUDA_SOURCES = Path(__file__).resolve().parents[1] / "csrc" / "cuda"


@pytest.fixture(scope="module")
def emu():
    module = emulation_or_skip()
    yield module
    module._set_launch_limits(0, 0)


# ----------------------------------------------------------------------------- defect probes
def test_atomic_min_max_return_the_old_value(emu):
    # CUDA: atomicMin/Max return the value before the operation. HIP-CPU's GCC fallback returns
    # the new one; the mapping header's versions must not.
    old_min, new_min, old_max, new_max = emu._probe_atomics(raw=False)
    assert (old_min, new_min, old_max, new_max) == (5, 3, 1, 3)


def test_raw_hip_cpu_atomics_still_need_the_workaround(emu):
    # Pins why the workaround exists. If HIP-CPU is updated and this starts failing, the fixed
    # upstream result is (5, 3, 1, 3) and the mapping in cuda_runtime.h may be dropped.
    old_min, new_min, old_max, new_max = emu._probe_atomics(raw=True)
    assert (new_min, new_max) == (3, 3)      # the operation itself is right upstream
    assert (old_min, old_max) == (3, 3)      # ...but it returns the new value


@pytest.mark.parametrize("n", [1, 1000, 100_003])
def test_malloc_async_is_usable_at_once(emu, n):
    # cudaMallocAsync must hand back a pointer the next launch can use (HIP-CPU defers the
    # allocation until the stream runs it, so the launch captured a null pointer).
    error, null_after_call, wrong = emu._probe_malloc_async(n)
    assert error == 0
    assert null_after_call == 0
    assert wrong == 0


def test_null_stream_runs_in_order(emu):
    # Work on stream 0 runs in launch order: a check kernel launched after a slow fill must see
    # every element filled, on every try.
    assert emu._probe_stream_order(tries=6, n=4096, raw=False) == 0


def test_launch_limits_are_validated(emu):
    with pytest.raises(ValueError, match="max_grid"):
        emu._set_launch_limits(-1, 0)
    emu._set_launch_limits(3, 64)
    assert tuple(emu._launch_limits()) == (3, 64)
    emu._set_launch_limits(0, 0)
    assert tuple(emu._launch_limits()) == (0, 0)


# ----------------------------------------------------------------------------- kernel families
def _volume(seed: int, shape=(11, 14, 13)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 400.0, shape).astype(np.float32)


def _mask(seed: int, shape=(12, 13, 17), p=0.45) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < p


def _window(wrap=torch.from_numpy):
    x = wrap(np.round(_volume(1)).astype(np.int16))
    return [mf.hu_window(x, 40.0, 400.0), mf.multi_window(x, ["soft_tissue", "lung", "bone"])]


def _stats(wrap=torch.from_numpy):
    x = wrap(_volume(2))
    mask = wrap(_mask(3, x.shape, 0.6))
    stats = mf.intensity_stats(x, mask=mask)
    values = [torch.tensor([float(v) for k, v in sorted(stats.items()) if np.isscalar(v)])]
    return values + [mf.ct_normalize(x, mask=mask), mf.mr_normalize(x, mask=mask)]


def _components(wrap=torch.from_numpy):
    m = wrap(_mask(4))
    labels = mf.label(m, 26)
    return [labels, mf.label(m, 6), mf.largest_component(m, 2, 18), mf.fill_holes(m, 6),
            mf.remove_small_components(m, 5)]


def _distance(wrap=torch.from_numpy):
    m = wrap(_mask(5, p=0.7))
    return [mf.distance_transform(m, spacing=(1.5, 1.0, 0.7)), mf.signed_distance(m)]


def _resample(wrap=torch.from_numpy):
    x = wrap(_volume(6))
    return [mf.resample(x, (17, 9, 20), order=3), mf.resample(x, (5, 21, 13), order=1),
            mf.resample(x, spacing=(1.0, 2.0, 0.5), new_spacing=(1.5, 1.5, 1.5), order=0)]


def _resample_argmax(wrap=torch.from_numpy):
    scores = wrap(np.random.default_rng(7).random((5, 9, 8, 11)).astype(np.float32))
    return [mf.resample_argmax(scores, (13, 10, 7), order=1), mf.resample_argmax(scores, (6, 12, 15), order=3)]


def _sliding_window(wrap=torch.from_numpy):
    x = torch.from_numpy(_volume(8, (25, 19, 30)))[None, None]
    weights = torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1, 1)

    def predictor(p):
        return p * weights + 1.0

    probs = mf.sliding_window_inference(x, predictor, (16, 12, 16), overlap=0.5, batch_size=3, mode="gaussian")
    labels = mf.sliding_window_inference(x, predictor, (16, 12, 16), overlap=0.25, batch_size=2, argmax=True)
    return [probs, labels]


def _losses(kind: str):
    from medseg_fast.losses import DiceFocalLoss, DiceLoss

    rng = np.random.default_rng(9)
    logits = torch.from_numpy(rng.normal(size=(2, 4, 9, 10, 11)).astype(np.float32)).requires_grad_(True)
    target = torch.from_numpy(rng.integers(0, 4, (2, 1, 9, 10, 11)))
    if kind == "sums":   # forward only: the per-class sums
        with torch.no_grad():
            return [DiceLoss(batch=True)(logits, target), DiceLoss(squared_pred=True)(logits, target)]
    loss = DiceFocalLoss(gamma=2.0, ignore_index=3)(logits, target)
    loss.backward()
    return [loss.detach(), logits.grad]


#: driver file -> a case that launches its kernels (device_info.cu only queries the device).
CASES = {
    "intensity_window.cu": _window,
    "intensity_stats.cu": _stats,
    "components_label.cu": _components,
    "distance_edt.cu": _distance,
    "resample.cu": _resample,
    "resample_argmax.cu": _resample_argmax,
    "sliding_window.cu": _sliding_window,
    "losses_sums.cu": lambda: _losses("sums"),
    "losses_grad.cu": lambda: _losses("grad"),
}

#: (max blocks per grid, max threads per block); (0, 0) = as the driver asks.
CAPS = [(0, 0), (1, 32), (3, 64), (5, 0), (0, 128)]


def _run(case, emu, cap):
    emu._set_launch_limits(*cap)
    try:
        with _ext.emulate_cuda():
            before = emu._launches()
            results = case()
            launched = emu._launches() - before
    finally:
        emu._set_launch_limits(0, 0)
    return [torch.as_tensor(r).detach().cpu().numpy() for r in results], launched


def test_every_driver_file_has_an_emulation_case():
    drivers = sorted(p.name for p in CUDA_SOURCES.glob("*.cu"))
    assert drivers, CUDA_SOURCES
    missing = set(drivers) - set(CASES) - {"device_info.cu"}
    assert not missing, f"CUDA driver files without a case in tests/test_emulation.py: {sorted(missing)}"


def test_device_queries(emu):
    assert emu.device_count() >= 1
    assert emu.runtime_version() > 0


@pytest.mark.parametrize("driver", sorted(CASES))
def test_results_do_not_depend_on_the_launch_shape(emu, driver):
    reference, launched = _run(CASES[driver], emu, CAPS[0])
    assert launched > 0, f"{driver}: the case launched no emulated kernel (the CUDA path was not taken)"
    for cap in CAPS[1:]:
        got, _ = _run(CASES[driver], emu, cap)
        assert len(got) == len(reference)
        for i, (a, b) in enumerate(zip(got, reference)):
            assert a.dtype == b.dtype and a.shape == b.shape, (driver, cap, i)
            assert np.array_equal(a, b, equal_nan=True), \
                f"{driver} output {i}: launch caps {cap} change the result (max |diff| " \
                f"{np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))})"


@pytest.mark.parametrize("driver", ["intensity_window.cu", "components_label.cu", "distance_edt.cu", "resample.cu",
                                    "resample_argmax.cu"])
def test_emulated_results_equal_the_cpu_kernels(emu, driver):
    """The same calls with numpy inputs take the CPU kernels: equal to the emulated CUDA results
    (the parity bodies over the `device` fixture check this per function in depth)."""
    emulated, _ = _run(CASES[driver], emu, CAPS[0])
    cpu = [np.asarray(r) for r in CASES[driver](wrap=np.asarray)]
    for i, (a, b) in enumerate(zip(emulated, cpu)):
        if driver == "components_label.cu" and i < 2:
            # component ids may be numbered differently: compare the partitions
            pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
            assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1], (driver, i)
            continue
        assert a.shape == b.shape and a.dtype == b.dtype, (driver, i, a.dtype, b.dtype)
        assert np.array_equal(a, b, equal_nan=True), (driver, i)
