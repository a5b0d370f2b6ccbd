"""Locating the benchmark volumes, which are never committed (some are GPL or CC BY)."""

from __future__ import annotations

import os
from pathlib import Path


def benchmark_dir() -> Path | None:
    """``$MEDSEG_BENCH_DATA``, else ``../shared/data/benchmark`` next to the repository or cwd."""
    candidates = []
    if os.environ.get("MEDSEG_BENCH_DATA"):
        candidates.append(Path(os.environ["MEDSEG_BENCH_DATA"]))
    repo = Path(__file__).resolve().parents[3]
    candidates += [repo.parent / "shared" / "data" / "benchmark", Path.cwd().parent / "shared" / "data" / "benchmark"]
    for path in candidates:
        if path.is_dir():
            return path
    return None


def load_benchmark_volume(name: str):
    """(array in z, y, x order, spacing in the same order) of a benchmark volume, or None if absent."""
    folder = benchmark_dir()
    if folder is None or not (folder / name).exists():
        return None
    import SimpleITK as sitk

    image = sitk.ReadImage(str(folder / name))
    return sitk.GetArrayFromImage(image), tuple(float(s) for s in reversed(image.GetSpacing()))
