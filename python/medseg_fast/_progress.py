"""Progress of long work (preprocess, train, predict, evaluate, bench) and the logging set-up of the CLI.

On a terminal (stderr is a TTY): a tqdm bar on stderr (count, rate, ETA). Elsewhere (a log file, CI, a pipe):
one plain line per item on stdout (``evaluate 3/50 case_003 6% 1.2 s/case ETA 58 s``), since tqdm's carriage
returns make one unreadable line there, and stderr keeps the one-line error contract of the CLI. Per-step work
(training) prints at most one line per ``min_interval`` seconds.

Library calls are quiet by default; the ``medseg-fast`` command turns progress on (``--quiet`` keeps it off).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

__all__ = ["enable", "enabled", "Progress", "track", "setup_logging"]

_enabled = False


def enable(on: bool = True) -> None:
    """Turn progress reporting on or off for this process."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    return _enabled


def _fmt_s(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    if s < 90:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    return f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


class Progress:
    """A progress reporter: ``update(n, item=...)`` after each unit of work, ``close()`` at the end.

    Parameters
    ----------
    desc : str
        What runs ("evaluate").
    total : int, optional
        Units expected (gives the percentage and the ETA).
    unit : str
        Name of a unit ("case", "step", "row").
    min_interval : float
        Plain-line mode: seconds between two lines (0: one line per update; the last update always prints).
    stream : file, optional
        Default: ``sys.stderr`` when it is a terminal (the bar), else ``sys.stdout`` (the lines).
    force : bool, optional
        Report even if progress was not :func:`enable`-d (True) or never (False); default: :func:`enabled`.
    """

    def __init__(self, desc: str, total: int | None = None, *, unit: str = "case", min_interval: float = 0.0,
                 initial: int = 0, stream: TextIO | None = None, force: bool | None = None) -> None:
        self.desc, self.total, self.unit, self.min_interval = desc, total, unit, min_interval
        self.n = initial
        self._start_n = initial
        self.active = _enabled if force is None else force
        self._t0 = self._last = time.perf_counter()
        self._bar = None
        self._postfix = ""
        tty = _isatty(stream or sys.stderr)
        self.stream = stream or (sys.stderr if tty else sys.stdout)
        if self.active and tty:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream,
                                 dynamic_ncols=True, leave=True)

    def set_postfix(self, text: str) -> None:
        self._postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def update(self, n: int = 1, *, item: str | None = None) -> None:
        self.n += n
        if not self.active:
            return
        if self._bar is not None:
            if item is not None:
                self._bar.set_postfix_str(" ".join(x for x in (str(item), self._postfix) if x))
            self._bar.update(n)
            return
        now = time.perf_counter()
        last = self.total is not None and self.n >= self.total
        if now - self._last < self.min_interval and not last:
            return
        self._last = now
        done = self.n - self._start_n
        rate = (now - self._t0) / done if done else float("nan")
        parts = [self.desc, f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"]
        if item is not None:
            parts.append(str(item))
        if self.total:
            parts.append(f"{100 * self.n / self.total:.0f}%")
        parts.append(f"{rate:.2f} s/{self.unit}" if rate == rate else "")
        if self.total is not None:
            parts.append(f"ETA {_fmt_s(rate * (self.total - self.n))}" if not last else
                         f"done in {_fmt_s(now - self._t0)}")
        if self._postfix:
            parts.append(self._postfix)
        print(" ".join(p for p in parts if p), file=self.stream, flush=True)

    def write(self, text: str) -> None:
        """A message that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def track(items: Iterable[Any], desc: str, *, total: int | None = None, unit: str = "case",
          name: Any = None) -> Iterator[Any]:
    """Yield ``items``, reporting one unit after each (``name(item)`` labels the line)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(desc, total, unit=unit) as bar:
        for item in items:
            yield item
            bar.update(1, item=name(item) if name else None)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def setup_logging(level: str = "WARNING", log_file: str | None = None) -> Callable[[], None]:
    """Root logging for the CLI: ``level`` on stderr, and everything at that level to ``log_file`` too.
    Returns the function that removes these handlers and restores the root level (the CLI calls it on exit,
    so a ``main()`` called from Python leaves logging as it found it)."""
    lvl = getattr(logging, str(level).upper(), None)
    if not isinstance(lvl, int):
        raise ValueError(f"--log-level must be one of DEBUG, INFO, WARNING, ERROR, got {level!r}")
    root = logging.getLogger()
    previous = root.level
    root.setLevel(lvl)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setFormatter(logging.Formatter("medseg-fast: %(levelname)s: %(message)s"))
    if log_file:
        try:
            fh = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"--log-file {log_file}: cannot open ({exc.strerror or exc})") from None
        fh.setFormatter(fmt)
        handlers.append(fh)
    for h in list(root.handlers):
        if getattr(h, "_medseg_cli", False):
            root.removeHandler(h)
            h.close()
    for h in handlers:
        h._medseg_cli = True  # type: ignore[attr-defined]
        h.setLevel(lvl)
        root.addHandler(h)

    def restore() -> None:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(previous)

    return restore
