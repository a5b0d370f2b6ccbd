"""Locating the benchmark volumes, which are never committed (some are GPL or CC BY).

The folder is given by the caller (``medseg-fast bench --data DIR`` sets it) or by the
``MEDSEG_BENCH_DATA`` environment variable; the package never guesses from where it is installed.
Suites whose volumes are not found skip their real-volume rows and say so.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MEDSEG_BENCH_DATA"


def benchmark_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The benchmark data folder: `path`, else ``$MEDSEG_BENCH_DATA``, else None.

    Raises
    ------
    ValueError
        When a folder was named (argument or environment) but does not exist.
    """
    source = "path" if path is not None else ENV_VAR
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        return None
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"{source} must name an existing folder of benchmark volumes, got {str(path)!r}")
    return folder


def load_benchmark_volume(name: str, path: str | os.PathLike | None = None):
    """(array in z, y, x order, spacing in the same order) of a benchmark volume, or None if absent."""
    folder = benchmark_dir(path)
    if folder is None or not (folder / name).exists():
        return None
    import SimpleITK as sitk

    image = sitk.ReadImage(str(folder / name))
    return sitk.GetArrayFromImage(image), tuple(float(s) for s in reversed(image.GetSpacing()))
