"""Reliability of the CPU drivers: layouts that once crashed, and a system that refuses threads.

Each case that once killed the interpreter runs in a subprocess, so a regression is reported
as a failure of that test instead of ending the whole run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import medseg_fast as mf


def _rng(request) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def _run_isolated(code: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=None if env is None else {**os.environ, **env})
    assert proc.returncode == 0, (
        f"child exited with {proc.returncode} (negative: killed by that signal)\n"
        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-4000:]}"
    )
    return proc


def test_cubic_resample_negative_stride_does_not_crash():
    # Issue 15 item 1: order 3 with a reversed axis among the lane axes read an unallocated
    # staging buffer (signal 11).
    proc = _run_isolated("""
        import numpy as np, medseg_fast as mf
        x = np.arange(11 * 5 * 11, dtype=np.float32).reshape(11, 5, 11)
        a = mf.resample(x[:, ::-1, :], (4, 2, 5), order=3, separate_z=1)
        b = mf.resample(np.ascontiguousarray(x[:, ::-1, :]), (4, 2, 5), order=3, separate_z=1)
        print(a.shape, bool(np.array_equal(a, b)))
    """)
    assert proc.stdout.split() == ["(4,", "2,", "5)", "True"]


@pytest.mark.parametrize("order", [0, 1, 3])
def test_resample_any_strides_equals_contiguous(request, order):
    # Reversed, stepped and transposed views give exactly the result of their contiguous copy.
    rng = _rng(request)
    for _ in range(60):
        shape = tuple(int(s) for s in rng.integers(1, 12, 3))
        base = rng.standard_normal(shape).astype(rng.choice([np.float32, np.float64, np.int16]))
        view = base[tuple(slice(None, None, int(rng.choice([-2, -1, 1, 2]))) for _ in range(3))]
        if rng.random() < 0.4:
            view = view.transpose(rng.permutation(3))
        out_shape = tuple(int(s) for s in rng.integers(1, 9, 3))
        kwargs = {"order": order}
        if rng.random() < 0.5:
            kwargs["separate_z"] = int(rng.integers(0, 3))
        before = view.copy()
        got = mf.resample(view, out_shape, **kwargs)
        want = mf.resample(np.ascontiguousarray(view), out_shape, **kwargs)
        np.testing.assert_array_equal(got, want, err_msg=f"view strides {view.strides}, {out_shape}, {kwargs}")
        np.testing.assert_array_equal(view, before)


def test_refused_threads_fall_back_instead_of_aborting():
    # Issue 15 item 1: when the system refuses a thread part way through a call, the error used
    # to escape while other threads were joinable ("terminate called without an active
    # exception"). The result must equal the single-thread result, whatever number of threads
    # could be started. RLIMIT_NPROC makes pthread_create fail cleanly with EAGAIN (root is
    # exempt from it, so a root child first drops to an unprivileged user).
    proc = _run_isolated("""
        import os, resource
        import numpy as np, medseg_fast as mf
        mask = np.zeros((300, 300, 2), bool)
        mask[10:290, 10:290, :] = True
        mf.set_num_threads(1)
        want = (mf.distance_transform(mask), mf.label(mask), mf.resample(mask.astype(np.float32), (7, 500, 3), order=3))
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        threads_now = len(os.listdir("/proc/self/task"))
        resource.setrlimit(resource.RLIMIT_NPROC, (threads_now + 2, threads_now + 2))
        mf.set_num_threads(64)
        got = (mf.distance_transform(mask), mf.label(mask), mf.resample(mask.astype(np.float32), (7, 500, 3), order=3))
        print(*(bool(np.array_equal(g, w)) for g, w in zip(got, want)))
    """, env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert proc.stdout.split() == ["True", "True", "True"]


def test_many_threads_give_the_single_thread_result(request):
    rng = _rng(request)
    mask = rng.random((37, 41, 43)) < 0.3
    previous = mf.get_num_threads()
    try:
        mf.set_num_threads(1)
        want = (mf.distance_transform(mask), mf.label(mask), mf.resample(mask.astype(np.float32), (20, 30, 50), order=3))
        mf.set_num_threads(97)
        got = (mf.distance_transform(mask), mf.label(mask), mf.resample(mask.astype(np.float32), (20, 30, 50), order=3))
    finally:
        mf.set_num_threads(previous)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_losses_on_misaligned_tensors(request, dtype):
    # Issue 15 item 8: torch.frombuffer at an odd offset gives tensors whose data address is not a
    # multiple of the item size; the fused loss handed it to typed C++ pointers (UB under UBSan).
    torch = pytest.importorskip("torch")
    from medseg_fast.losses import DiceFocalLoss

    rng = _rng(request)
    values = rng.standard_normal((2, 3, 4, 5, 6)).astype(dtype)
    raw = bytearray(values.nbytes + 1)
    misaligned = torch.frombuffer(raw, dtype=getattr(torch, dtype), offset=1, count=values.size).view(values.shape)
    misaligned.copy_(torch.from_numpy(values))
    assert misaligned.data_ptr() % misaligned.element_size() != 0
    target = torch.from_numpy(rng.integers(0, 3, (2, 4, 5, 6)))
    aligned = torch.from_numpy(values.copy())
    misaligned.requires_grad_(True)
    aligned.requires_grad_(True)
    loss_fn = DiceFocalLoss()
    got, want = loss_fn(misaligned, target), loss_fn(aligned, target)
    got.backward()
    want.backward()
    assert torch.equal(got.detach(), want.detach())
    assert torch.equal(misaligned.grad, aligned.grad)
