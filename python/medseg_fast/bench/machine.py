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


# Import name -> distribution names to ask importlib.metadata when the module has no __version__ (cc3d, edt).
PEERS = {
    "numpy": ("numpy",), "scipy": ("scipy",), "torch": ("torch",), "monai": ("monai",),
    "cc3d": ("connected-components-3d",), "edt": ("edt",), "SimpleITK": ("SimpleITK", "simpleitk"),
    "skimage": ("scikit-image",), "medpy": ("MedPy", "medpy"), "surface_distance": ("surface-distance",
                                                                                     "surface_distance"),
    "torchio": ("torchio",), "nnunetv2": ("nnunetv2",), "cupy": ("cupy", "cupy-cuda13x", "cupy-cuda12x"),
}


def peer_version(name: str) -> str:
    """Version of an imported peer module: its ``__version__``, else its installed distribution's metadata."""
    from importlib import metadata

    version = getattr(sys.modules.get(name), "__version__", None)
    if isinstance(version, str) and version:
        return version
    for dist in PEERS.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages ("n/a" where the OS has none)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


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
    for name in PEERS:
        if name in sys.modules:
            info[name] = peer_version(name)
    if device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name()
    return info
