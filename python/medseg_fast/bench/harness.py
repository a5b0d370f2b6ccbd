"""Shared benchmark harness: correctness first, then ours vs peers in one process.

Rules (see README, "Benchmarks"): every implementation of a case is timed in the same process,
alternating rounds (the order rotates every round), after warm-up; the median and the
interquartile range are reported, with the speed-up of ours over each peer
(``peer median / our median``), MVx/s, peak extra memory and, for bandwidth-bound kernels, the
fraction of a plain memory copy moving the same bytes.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Timing", "Row", "measure", "peak_extra_memory", "copy_bandwidth", "rows_for_case", "sync_for",
           "set_row_hook"]

# Called with the rows of each case as soon as they are measured (run_suites reports progress with it).
_row_hook: Callable[[list], None] | None = None


def set_row_hook(hook: Callable[[list], None] | None) -> None:
    """Install (or remove, with None) the function that receives the rows of every measured case."""
    global _row_hook
    _row_hook = hook


@dataclass
class Timing:
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.times, [25, 75])
        return float(q3 - q1)


@dataclass
class Row:
    suite: str
    case: str
    impl: str
    median_s: float
    iqr_s: float
    mvox_per_s: float | None = None
    speedup_of_ours: float | None = None   # this impl's median / ours (>1: ours is faster)
    peak_extra_mib: float | None = None
    copy_fraction: float | None = None     # plain-copy time for the same bytes / this time
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def sync_for(device: str) -> Callable[[], None]:
    """A synchronisation function for timing on `device` (no-op on the CPU)."""
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def measure(
    impls: dict[str, Callable[[], Any]],
    *,
    warmup: int = 1,
    repeats: int = 5,
    sync: Callable[[], None] | None = None,
) -> dict[str, Timing]:
    """Time each callable, alternating between them round by round (order rotated each round)."""
    sync = sync or (lambda: None)
    names = list(impls)
    timings = {name: Timing() for name in names}
    for round_index in range(warmup + repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            sync()
            start = time.perf_counter()
            impls[name]()
            sync()
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                timings[name].times.append(elapsed)
    return timings


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_extra_memory(fn: Callable[[], Any], device: str = "cpu") -> float:
    """Peak memory above the starting level while `fn` runs, in MiB (result kept alive)."""
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        result = fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        del result
        return peak / 2**20
    if not os.path.exists("/proc/self/statm"):
        return float("nan")
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = fn()
        peak[0] = max(peak[0], _rss_bytes())
    finally:
        done.set()
        sampler.join()
    del result
    return (peak[0] - base) / 2**20


def copy_bandwidth(nbytes: int = 256 * 2**20, repeats: int = 5) -> float:
    """Bytes per second (read + written) of a plain preallocated memory copy on the CPU."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    timing = measure({"copy": lambda: np.copyto(dst, src)}, warmup=1, repeats=repeats)["copy"]
    return 2 * src.nbytes / timing.median


def rows_for_case(
    suite: str,
    case: str,
    timings: dict[str, Timing],
    *,
    ours: str,
    voxels: int | None = None,
    bytes_moved: int | None = None,
    bandwidth: float | None = None,
    memory: dict[str, float] | None = None,
    notes: dict[str, str] | None = None,
) -> list[Row]:
    """Rows of one case: ours first, then each peer with the speed-up of ours over it."""
    base = timings[ours].median
    rows = []
    for name in [ours] + [n for n in timings if n != ours]:
        t = timings[name]
        rows.append(Row(
            suite=suite,
            case=case,
            impl=name,
            median_s=t.median,
            iqr_s=t.iqr,
            mvox_per_s=(voxels / t.median / 1e6) if voxels else None,
            speedup_of_ours=t.median / base if base > 0 else None,
            peak_extra_mib=(memory or {}).get(name),
            copy_fraction=(bytes_moved / bandwidth / t.median) if (bytes_moved and bandwidth) else None,
            note=(notes or {}).get(name, ""),
        ))
    if _row_hook is not None:
        _row_hook(rows)
    return rows
