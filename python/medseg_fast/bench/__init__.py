"""Benchmark suites: ours vs the established peers, in one process (``medseg-fast bench``).

A suite is a module ``medseg_fast.bench.suite_<name>`` exposing ``NAME``, ``DESCRIPTION`` and
``run(device: str, quick: bool) -> list[Row]``; suites are discovered by that file name. Suites find the real
benchmark volumes through :func:`medseg_fast.bench.data.benchmark_dir` (``run_suites(..., data=DIR)`` or
``$MEDSEG_BENCH_DATA``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
from collections.abc import Iterator
from pathlib import Path

from ..io import write_text_atomic
from .data import ENV_VAR, benchmark_dir
from .harness import Row
from .machine import machine_info

__all__ = ["available_suites", "run_suites", "write_results", "format_table"]


def available_suites() -> list[str]:
    return sorted(m.name[len("suite_"):] for m in pkgutil.iter_modules(__path__) if m.name.startswith("suite_"))


def _load(name: str):
    return importlib.import_module(f"{__name__}.suite_{name}")


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def format_table(rows: list[Row]) -> str:
    header = "| suite | case | impl | median ms | IQR ms | MVx/s | ours × faster | peak extra MiB | copy fraction | note |"
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r.suite} | {r.case} | {r.impl} | {r.median_s * 1e3:.2f} | {r.iqr_s * 1e3:.2f} | "
            f"{_fmt(r.mvox_per_s, '.0f')} | {_fmt(r.speedup_of_ours, '.2f')} | {_fmt(r.peak_extra_mib, '.0f')} | "
            f"{_fmt(r.copy_fraction, '.0%')} | {r.note} |"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def _data_folder(data: str | os.PathLike | None) -> Iterator[None]:
    """``$MEDSEG_BENCH_DATA`` set to ``data`` (checked to be a folder) while the suites run, then restored."""
    if data is None:
        yield
        return
    folder = benchmark_dir(data)
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old


def run_suites(names: list[str], device: str = "cpu", quick: bool = False, log=print, *,
               data: str | os.PathLike | None = None) -> list[Row]:
    """Run the named suites in order and return their rows.

    Parameters
    ----------
    data : path-like, optional
        Folder of the benchmark volumes for this run (default: ``$MEDSEG_BENCH_DATA``; without either the
        suites skip their real-volume rows). ValueError if it is not a folder.
    """
    rows: list[Row] = []
    with _data_folder(data):
        for name in names:
            module = _load(name)
            log(f"== suite {name}: {module.DESCRIPTION}")
            suite_rows = module.run(device=device, quick=quick)
            log(format_table(suite_rows))
            rows.extend(suite_rows)
    return rows


def write_results(rows: list[Row], out_dir: str | Path, device: str, tag: str) -> tuple[Path, Path]:
    """Write ``OUT/TAG.json`` and ``OUT/TAG.md`` (machine description + table), each atomically and verified.

    Raises
    ------
    DataError
        A file cannot be written (full disk, no permission); nothing half-written is left.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info(device)
    json_path = out / f"{tag}.json"
    md_path = out / f"{tag}.md"
    write_text_atomic(json_path, json.dumps({"machine": machine, "rows": [r.as_dict() for r in rows]}, indent=1) + "\n")
    desc = "\n".join(f"- {k}: {v}" for k, v in machine.items())
    write_text_atomic(md_path, f"# Benchmark results: {tag}\n\n{desc}\n\n{format_table(rows)}\n")
    return json_path, md_path
