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

from ..io import atomic_path, write_text_atomic
from .data import ENV_VAR, benchmark_dir
from .._progress import Progress
from .harness import Row, set_row_hook
from .machine import load_average, machine_info

__all__ = ["available_suites", "run_suites", "write_results", "format_table", "write_chart", "COLUMNS"]

# The load average when the last run_suites started and ended: a busy machine makes every time longer.
LAST_RUN: dict[str, str] = {}

COLUMNS = """Columns:
- **median ms**: median wall time of the timed runs (after warm-up); ours and the peers run alternately in one
  process, the order rotated every round.
- **IQR ms**: interquartile range of those runs (their spread).
- **MVx/s**: million input voxels processed per second (voxels / median time).
- **ours × faster**: this row's median / our median for the same case (> 1: ours is faster; our own rows are
  near 1.00).
- **peak extra MiB**: peak resident (CPU) or allocated (GPU) memory above the level before the call.
- **copy fraction**: time of a plain memory copy moving the same bytes / this row's time (100% = as fast as a
  copy; only for bandwidth-bound kernels).
- **note**: the correctness check against ours (max difference) or how the row differs; "1 run": timed once
  (slow peer)."""


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
    LAST_RUN["load_before"] = load_average()
    with _data_folder(data):
        for k, name in enumerate(names, start=1):
            module = _load(name)
            log(f"== suite {name} ({k}/{len(names)}): {module.DESCRIPTION}")
            # one progress line per measured case (the number of cases of a suite is not known in advance)
            bar = Progress(f"bench {name}", None, unit="case")
            set_row_hook(lambda case_rows, bar=bar: bar.update(1, item=_case_summary(case_rows)))
            try:
                suite_rows = module.run(device=device, quick=quick)
            finally:
                set_row_hook(None)
                bar.close()
            log(format_table(suite_rows))
            rows.extend(suite_rows)
    LAST_RUN["load_after"] = load_average()
    return rows


def _case_summary(rows: list[Row]) -> str:
    """``case: ours 12.3 ms, 4.1x vs peer, ...`` for a progress line."""
    if not rows:
        return ""
    ours, peers = rows[0], rows[1:]
    vs = ", ".join(f"{r.speedup_of_ours:.2g}x vs {r.impl}" for r in peers if r.speedup_of_ours and not _is_ours(r.impl))
    return f"{ours.case}: {ours.impl} {ours.median_s * 1e3:.3g} ms" + (f", {vs}" if vs else "")


def write_results(rows: list[Row], out_dir: str | Path, device: str, tag: str, *,
                  chart: bool = True) -> tuple[Path, Path]:
    """Write ``OUT/TAG.json`` and ``OUT/TAG.md`` (machine description + table + column legend) and, with
    ``chart``, ``OUT/TAG.png`` (:func:`write_chart`), each atomically and verified.

    Raises
    ------
    DataError
        A file cannot be written (full disk, no permission); nothing half-written is left.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info(device)
    if LAST_RUN:
        machine["load average before (1/5/15 min)"] = LAST_RUN.get("load_before", "n/a")
        machine["load average after (1/5/15 min)"] = LAST_RUN.get("load_after", "n/a")
    json_path = out / f"{tag}.json"
    md_path = out / f"{tag}.md"
    write_text_atomic(json_path, json.dumps({"machine": machine, "rows": [r.as_dict() for r in rows]}, indent=1) + "\n")
    desc = "\n".join(f"- {k}: {v}" for k, v in machine.items())
    write_text_atomic(md_path, f"# Benchmark results: {tag}\n\n{desc}\n\n{format_table(rows)}\n\n{COLUMNS}\n"
                               f"\nChart: {tag}.png (ours × faster than each peer, per case).\n")
    if chart:
        write_chart(rows, out / f"{tag}.png", title=f"{tag}: ours × faster than each peer")
    return json_path, md_path


def _is_ours(impl: str) -> bool:
    return impl.startswith("medseg_fast") or impl.startswith("ours")


def write_chart(rows: list[Row], path: str | Path, *, title: str = "ours × faster than each peer") -> Path | None:
    """A PNG bar chart (log scale) of how many times faster ours is than each peer, one bar per case and peer;
    None when no row has a peer."""
    bars = [(f"{r.case} | {r.impl}", r.speedup_of_ours, r.suite) for r in rows
            if not _is_ours(r.impl) and r.speedup_of_ours]
    if not bars:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = sorted({b[2] for b in bars})
    colours = {s: plt.cm.tab10(i % 10) for i, s in enumerate(suites)}
    labels = [b[0] if len(b[0]) <= 72 else b[0][:69] + "..." for b in bars]
    fig, ax = plt.subplots(figsize=(13, 0.28 * len(bars) + 1.4))
    y = range(len(bars))[::-1]
    ax.barh(list(y), [b[1] for b in bars], color=[colours[b[2]] for b in bars])
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(list(y), labels, fontsize=7)
    for yi, b in zip(y, bars):
        ax.text(b[1], yi, f" {b[1]:.3g}×", va="center", fontsize=7)
    ax.set_xlabel("ours × faster (peer median / our median; < 1: the peer is faster)")
    ax.set_title(title, fontsize=10)
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours[s]) for s in suites], labels=suites,
              fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.subplots_adjust(left=max(fig.subplotpars.left, 0.36))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
