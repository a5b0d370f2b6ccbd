"""Benchmark suites: ours vs the established peers, in one process (``medseg-fast bench``).

A suite is a module ``medseg_fast.bench.suite_<name>`` exposing ``NAME``, ``DESCRIPTION`` and
``run(device: str, quick: bool) -> list[Row]``; suites are discovered by that file name.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

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


def run_suites(names: list[str], device: str = "cpu", quick: bool = False, log=print) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        module = _load(name)
        log(f"== suite {name}: {module.DESCRIPTION}")
        suite_rows = module.run(device=device, quick=quick)
        log(format_table(suite_rows))
        rows.extend(suite_rows)
    return rows


def write_results(rows: list[Row], out_dir: str | Path, device: str, tag: str) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info(device)
    json_path = out / f"{tag}.json"
    md_path = out / f"{tag}.md"
    json_path.write_text(json.dumps({"machine": machine, "rows": [r.as_dict() for r in rows]}, indent=1) + "\n")
    desc = "\n".join(f"- {k}: {v}" for k, v in machine.items())
    md_path.write_text(f"# Benchmark results: {tag}\n\n{desc}\n\n{format_table(rows)}\n")
    return json_path, md_path
