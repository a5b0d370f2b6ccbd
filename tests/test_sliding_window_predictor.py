"""Sliding-window inference around the predictor: how it is called (grad mode, threads, mirrored
calls), and that calling it differently never changes the result."""

from __future__ import annotations

import os

import medseg_fast
import numpy as np
import pytest
import torch
from medseg_fast import sliding_window_inference


def cumsum_predictor(sizes=None):
    """Not flip-invariant and computed window by window, so any batch split gives the same bits."""
    def predict(p):
        if sizes is not None:
            sizes.append(p.shape[0])
        return sum(p.cumsum(a) for a in range(2, p.ndim)) / sum(p.shape[2:])
    return predict


@pytest.mark.parametrize("mirror", [(0,), (0, 1), (1, 2), (0, 1, 2)])
def test_mirror_calls_give_identical_results(mirror, rng):
    x = torch.from_numpy(rng.random((2, 2, 11, 14, 9), dtype=np.float32))
    flips = 2 ** len(mirror)
    results, sizes = {}, {}
    for calls in ("auto", "joint", "separate"):
        sizes[calls] = []
        results[calls] = sliding_window_inference(x, cumsum_predictor(sizes[calls]), (6, 8, 5), batch_size=3,
                                                  mirror_axes=mirror, mirror_calls=calls)
    # CPU: "auto" is one call per flip, each holding at most batch_size windows.
    assert sizes["auto"] == sizes["separate"]
    assert max(sizes["separate"]) == 3
    assert sum(sizes["separate"]) == sum(sizes["joint"])
    assert all(s % flips == 0 for s in sizes["joint"]) and max(sizes["joint"]) == 3 * flips
    torch.testing.assert_close(results["joint"], results["separate"], rtol=0, atol=0)
    torch.testing.assert_close(results["auto"], results["separate"], rtol=0, atol=0)
    # ... and the mirrored average of this predictor differs from the unmirrored run.
    plain = sliding_window_inference(x, cumsum_predictor(), (6, 8, 5), batch_size=3)
    assert not torch.equal(plain, results["auto"])


def test_separate_mirror_calls_pass_contiguous_numpy_arrays(rng):
    x = rng.random((1, 1, 12, 10), dtype=np.float32)
    seen = []

    def predict(p):
        seen.append((p.flags.c_contiguous, p.strides))
        return np.concatenate([p, p[..., ::-1] * 0.5], axis=1)

    out = sliding_window_inference(x, predict, (8, 8), mirror_axes=(0, 1), batch_size=2)
    assert seen and all(contiguous for contiguous, _ in seen)
    joint = sliding_window_inference(x, predict, (8, 8), mirror_axes=(0, 1), batch_size=2, mirror_calls="joint")
    np.testing.assert_array_equal(out, joint)


def test_predictor_runs_without_grad_and_settings_are_restored(rng):
    conv = torch.nn.Conv3d(1, 2, 3, padding=1)
    threads = torch.get_num_threads()
    state = []

    def predict(p):
        state.append((torch.is_grad_enabled(), torch.get_num_threads()))
        return conv(p)

    x = torch.from_numpy(rng.random((1, 1, 10, 12, 9), dtype=np.float32))
    assert torch.is_grad_enabled()
    out = sliding_window_inference(x, predict, (6, 6, 6), batch_size=2, mirror_axes=(2,))
    assert state and all(s == (False, threads) for s in state)
    assert torch.is_grad_enabled() and torch.get_num_threads() == threads
    assert not out.requires_grad
    with torch.no_grad():
        expected = sliding_window_inference(x, conv, (6, 6, 6), batch_size=2, mirror_axes=(2,))
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    # Inside torch.inference_mode (nnU-Net's predictor runs there) the same result comes back.
    with torch.inference_mode():
        inference = sliding_window_inference(x, conv, (6, 6, 6), batch_size=2, mirror_axes=(2,))
    torch.testing.assert_close(inference, expected, rtol=0, atol=0)
    # A predictor may still turn gradients on for itself (test-time adaptation).
    def adapt(p):
        with torch.enable_grad():
            y = conv(p)
            assert y.requires_grad
        return y.detach()

    torch.testing.assert_close(sliding_window_inference(x, adapt, (6, 6, 6), batch_size=2, mirror_axes=(2,)),
                               expected, rtol=0, atol=0)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc/self/task (Linux)")
@pytest.mark.parametrize("argmax", [False, True])
def test_no_package_thread_alive_while_the_predictor_runs(argmax, rng):
    old = medseg_fast.get_num_threads()
    medseg_fast.set_num_threads(4)   # more workers than cores: any left running would show up
    try:
        x = rng.random((2, 2, 40, 36, 34), dtype=np.float32)
        baseline = len(os.listdir("/proc/self/task"))
        counts = []

        def predict(p):
            counts.append(len(os.listdir("/proc/self/task")))
            return np.concatenate([p, 1 - p], axis=1)

        out = sliding_window_inference(x, predict, (24, 24, 24), batch_size=3, argmax=argmax)
    finally:
        medseg_fast.set_num_threads(old)
    assert len(counts) == 2 * 4   # 12 windows per image, 3 per call
    assert counts == [baseline] * len(counts)
    if not argmax:
        np.testing.assert_allclose(out[:, :2], x, rtol=1e-6, atol=1e-6)


def test_mirror_calls_rejects_unknown_values():
    with pytest.raises(ValueError, match="mirror_calls must be 'auto', 'joint' or 'separate', got 'both'"):
        sliding_window_inference(torch.rand(1, 1, 8, 8), lambda p: p, (4, 4), mirror_axes=(0,), mirror_calls="both")


def test_input_that_requires_grad_is_refused_not_silently_detached():
    torch = pytest.importorskip("torch")
    x = torch.rand(1, 1, 20, 18, requires_grad=True)
    with pytest.raises(ValueError, match="requires grad"):
        sliding_window_inference(x, lambda p: p * 2, (8, 8))
    with torch.no_grad():   # grad mode off: nothing to keep, so it runs
        y = sliding_window_inference(x, lambda p: p * 2, (8, 8))
    assert not y.requires_grad
    torch.testing.assert_close(y, x.detach() * 2, rtol=1e-6, atol=1e-6)
