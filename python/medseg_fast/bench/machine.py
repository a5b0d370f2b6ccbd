"""Description of the machine and software a benchmark ran on (stored with every result)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str:
    """Commit of the medseg_fast checkout the benchmark runs from (the working directory), or
    "unknown": an installed package knows no checkout, so none is guessed from its location."""
    try:
        pyproject = Path.cwd() / "pyproject.toml"
        if not pyproject.is_file() or 'name = "medseg-fast"' not in pyproject.read_text():
            return "unknown"
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info(device: str = "cpu") -> dict:
    import medseg_fast

    info = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "medseg_fast": medseg_fast.__version__,
        "commit": _git_commit(),
        "threads": medseg_fast.get_num_threads(),
        "device": device,
    }
    for name in ("numpy", "scipy", "torch", "monai", "cc3d", "edt", "SimpleITK", "skimage", "cupy"):
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", "?")
    if device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name()
    return info
