"""ITK's warnings and C-level stderr (niftilib, GDCM) captured around a read or write, so that they never reach
the terminal: those that mean bad data raise :class:`DataError`, the others are logged."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from ._meta import DataError, _sitk

log = logging.getLogger("medseg_fast.io")  # one logger for the package, as documented

# ITK warnings that mean the data is wrong, not merely unusual
_BAD_DATA_WARNINGS = re.compile(r"unexpected scales|short read|truncat|not enough|premature|"
                                r"could not read|failed to read|fewer|unable", re.IGNORECASE)


_CAPTURE_LOCK = threading.Lock()
_CAPTURE: dict[str, Any] = {"depth": 0, "logger": None, "old": None, "fd": None, "tmp": None, "msgs": []}


def _itk_logger() -> Any:
    """One ITK logger for the process that appends to the shared message list (kept alive while installed)."""
    if _CAPTURE["logger"] is None:
        sitk = _sitk()

        class _Logger(sitk.LoggerBase):
            def DisplayText(self, t: str) -> None:
                _CAPTURE["msgs"].append(t)

            DisplayErrorText = DisplayWarningText = DisplayGenericOutputText = DisplayText

            def DisplayDebugText(self, t: str) -> None:
                pass

        _CAPTURE["logger"] = _Logger()
    return _CAPTURE["logger"]


class _Capture:
    """While active: ITK warnings go to a list (not stderr) and C-level writes to file descriptor 2 (niftilib
    prints its errors there) go to a temporary file; both are handed back afterwards. Nested and concurrent
    uses (threads) share one installation, undone by the last to leave, so stderr is always restored."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.stderr = ""

    def __enter__(self) -> _Capture:
        with _CAPTURE_LOCK:
            st = _CAPTURE
            if st["depth"] == 0:
                st["msgs"] = []
                st["old"] = _itk_logger().SetAsGlobalITKLogger()
                try:
                    sys.stderr.flush()
                    tmp = tempfile.TemporaryFile()
                    fd = os.dup(2)
                    os.dup2(tmp.fileno(), 2)
                    st["fd"], st["tmp"] = fd, tmp
                except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded, closed): no capture
                    st["fd"] = st["tmp"] = None
            st["depth"] += 1
            self._first = len(st["msgs"])
            self._offset = os.fstat(st["tmp"].fileno()).st_size if st["tmp"] is not None else 0
        return self

    def __exit__(self, *exc: Any) -> None:
        with _CAPTURE_LOCK:
            st = _CAPTURE
            self.warnings = st["msgs"][self._first:]
            if st["tmp"] is not None:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                self.stderr = os.pread(st["tmp"].fileno(), 1 << 20, self._offset).decode("utf-8", "replace")
            st["depth"] -= 1
            if st["depth"] == 0:
                st["old"].SetAsGlobalITKLogger()
                st["old"] = None
                if st["fd"] is not None:
                    os.dup2(st["fd"], 2)
                    os.close(st["fd"])
                    st["tmp"].close()
                    st["fd"] = st["tmp"] = None

    def messages(self, stderr: bool = True) -> list[str]:
        """Captured ITK messages (and, with ``stderr``, the C-level stderr text) as one line each, ITK's
        source-file preamble dropped."""
        out = []
        for text in self.warnings + ([self.stderr] if stderr and self.stderr.strip() else []):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("WARNING: In ")]
            out.extend(re.sub(r"\w+ \(0x[0-9a-f]+\): ", "", ln) for ln in lines)
        return out


def _raise_or_log(p: Path, messages: list[str], what: str) -> None:
    bad = [m for m in messages if _BAD_DATA_WARNINGS.search(m) or m.startswith("** ERROR")]
    if bad:
        raise DataError(f"{p}: {what} failed: {bad[0][:200]}")
    for m in messages:
        log.warning("%s: %s", p, m)

