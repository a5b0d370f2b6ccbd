"""Verified atomic writes: a temporary name next to the target, fsync, a check of the content, then a rename;
the temporary files of killed writers are recognised (:func:`is_temp_name`) and cleaned up."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._meta import IMAGE_SUFFIXES, DataError

__all__ = ["atomic_path", "write_text_atomic", "is_temp_name", "clean_stale_temp_files", "check_zip"]

log = logging.getLogger("medseg_fast.io")  # one logger for the package, as documented


def _tmp_name(target: Path) -> Path:
    # keep the full suffix (".nii.gz"): SimpleITK picks the format from it
    name = target.name
    suffix = next((s for s in IMAGE_SUFFIXES + (".npz", ".json", ".csv", ".png", ".pt") if name.lower().endswith(s)), "")
    stem = name[: len(name) - len(suffix)]
    return target.with_name(f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


_TEMP_RE = re.compile(r"^\..+\.(?:tmp-(\d+)-[0-9a-f]{8}|old-[0-9a-f]{8})")


def is_temp_name(name: str) -> bool:
    """True for the name of a temporary file or folder of :func:`atomic_path` (``.CASE.tmp-PID-XXXXXXXX.npz``),
    e.g. one left behind by a killed run: never an input or a finished output."""
    return bool(_TEMP_RE.match(name))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists under another user, or cannot tell: keep the file
    return True


def clean_stale_temp_files(folder: str | os.PathLike, *, older_than: float) -> list[Path]:
    """Remove the temporary files of :func:`atomic_path` in ``folder`` left by killed writers.

    A temporary file is removed when it was last modified before ``older_than`` (a ``time.time()`` value,
    typically the start of this run) and the process named in it no longer runs on this machine; any other
    temporary file (a writer may still be at work, e.g. another rank) is kept and reported with a logging
    warning. Returns the removed paths.

    Examples
    --------
    >>> import tempfile, time, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> clean_stale_temp_files(d, older_than=time.time())
    []
    """
    removed, kept = [], []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for f in sorted(root.iterdir()):
        m = _TEMP_RE.match(f.name)
        if not m:
            continue
        try:
            mtime = f.lstat().st_mtime
        except FileNotFoundError:
            continue  # its writer just renamed or removed it
        if mtime < older_than and not (m.group(1) and _pid_alive(int(m.group(1)))):
            _remove(f)
            removed.append(f)
        else:
            kept.append(f.name)
    if removed:
        log.warning("%s: removed %d temporary file(s) left by an interrupted run: %s", root, len(removed),
                    ", ".join(f.name for f in removed[:5]))
    if kept:
        log.warning("%s: temporary file(s) of a running or recent writer ignored: %s", root, ", ".join(kept[:5]))
    return removed


def _fsync_path(p: Path) -> None:
    """fsync a file, or every file of a folder and the folder: delayed write errors (a full disk on NFS, thin
    volumes) surface here, before the rename, instead of after it."""
    if p.is_dir():
        for f in p.rglob("*"):
            if f.is_file():
                _fsync_path(f)
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF) or not p.is_dir():  # some file systems: no dir fsync
            raise
    finally:
        os.close(fd)


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):  # durability of the rename only; the data is already synced
        fd = os.open(d if str(d) else ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_failed(target: Path, tmp: Path, exc: BaseException) -> DataError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    reason = " ".join(reason.replace(f"{tmp}: ", "").replace(str(tmp), "the temporary file").split())
    return DataError(f"{target}: write failed ({reason[:300]}); nothing was written")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, verify: Any = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on any error (Ctrl-C
    included) delete it. Works for files and folders (an existing target folder is replaced).

    Before the rename the temporary file (every file of a folder) is fsynced and, if given,
    ``verify(tmp)`` is called (it raises when the content is wrong, e.g. a short write on a full disk);
    write errors (``OSError`` of the temporary file, a failed fsync, a missing result) become a
    :class:`DataError` naming ``path``, and the temporary file is removed.

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> open(target).read()
    'done'
    """
    target = Path(path)
    tmp = _tmp_name(target)
    try:
        try:
            yield tmp
            if not tmp.exists():
                raise DataError(f"{target}: write failed (no output was produced); nothing was written")
            _fsync_path(tmp)
            if verify is not None:
                verify(tmp)
        except OSError as exc:
            if exc.filename in (None, str(tmp), tmp) or isinstance(exc.filename, str) and exc.filename.startswith(
                    str(tmp)):
                raise _write_failed(target, tmp, exc) from exc
            raise
        except DataError as exc:
            if str(tmp) in str(exc):
                raise _write_failed(target, tmp, exc) from exc
            raise
        if tmp.is_dir():
            if target.exists():
                old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
                os.replace(target, old)
                os.replace(tmp, target)
                _remove(old)
            else:
                os.replace(tmp, target)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        _remove(tmp)
        raise


def _check_size(p: Path, expected: int) -> None:
    size = p.stat().st_size
    if size != expected:
        raise DataError(f"{p}: {size} bytes on disk, {expected} written (short write)")


def write_text_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` atomically: flush, fsync and close checked, the size on disk
    compared with what was written, then renamed into place (:func:`atomic_path`).

    Raises
    ------
    DataError
        The write failed (full disk, quota, I/O error); the message names ``path``. Nothing is left behind.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.json")
    >>> write_text_atomic(p, '{"ok": 1}')
    >>> open(p).read()
    '{"ok": 1}'
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path, verify=lambda t: _check_size(t, len(raw))) as tmp, open(tmp, "wb") as fh:
        fh.write(raw)


def check_zip(p: Path) -> None:
    """Check that ``p`` is a zip container (``.npz``, torch ``.pt``) whose every member reads back with its CRC
    (a verifier for :func:`atomic_path`).

    Raises
    ------
    DataError
        Not a complete zip container, or a member fails its CRC check.
    """
    try:
        with zipfile.ZipFile(p) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"{p}: not a complete zip container ({exc})") from None
    if bad is not None:
        raise DataError(f"{p}: member {bad} fails its CRC check (corrupt)")


def _remove(p: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


def _check_writable(p: Path) -> None:
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{p}: cannot create the output folder ({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK):
        raise DataError(f"{p}: output folder {parent} is not writable")

