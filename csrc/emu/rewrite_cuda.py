"""Turn one CUDA source into C++ for the CPU emulation build (tests only; csrc/emu/README.md).

Two constructs are CUDA syntax rather than names a header can map, so they are rewritten in a
copy in the build directory (the .cu sources are never edited):

* ``kernel<<<grid, block[, shmem[, stream]]>>>(args)`` becomes
  ``::msf_emu::Launch(grid, block[, shmem[, stream]])(&kernel)(args)``;
* ``extern __shared__ T name[];`` becomes HIP-CPU's ``HIP_DYNAMIC_SHARED(T, name)``.

Line breaks are kept and a ``#line`` directive names the original file, so compiler messages
point at the .cu source. Usage: ``python rewrite_cuda.py IN.cu OUT.cpp``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_SHARED = re.compile(r"extern\s+__shared__\s+([\w:<>, ]+?)\s+(\w+)\s*\[\s*\]\s*;")


def _kernel_start(text: str, end: int) -> int:
    """Index where the kernel expression ending at `end` (exclusive) begins: a name, optionally
    qualified, optionally followed by one balanced template argument list."""
    i = end
    while i > 0 and text[i - 1].isspace():
        i -= 1
    if i > 0 and text[i - 1] == ">":
        depth = 0
        while i > 0:
            i -= 1
            if text[i] == ">":
                depth += 1
            elif text[i] == "<":
                depth -= 1
                if depth == 0:
                    break
        else:
            raise ValueError("unbalanced template arguments before <<<")
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_:"):
        i -= 1
    return i


def _config_end(text: str, start: int) -> int:
    """Index of the ``>>>`` that closes the launch configuration opened at `start`."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(">>>", i):
            return i
        i += 1
    raise ValueError("<<< without a closing >>>")


def rewrite(text: str) -> str:
    text = _SHARED.sub(lambda m: f"HIP_DYNAMIC_SHARED({m.group(1).strip()}, {m.group(2)})", text)
    out: list[str] = []
    pos = 0
    while True:
        open_ = text.find("<<<", pos)
        if open_ < 0:
            out.append(text[pos:])
            return "".join(out)
        start = _kernel_start(text, open_)
        if start == open_:
            raise ValueError(f"no kernel name before <<< at offset {open_}")
        close = _config_end(text, open_ + 3)
        kernel = text[start:open_].strip()
        out.append(text[pos:start])
        out.append(f"::msf_emu::Launch({text[open_ + 3:close]})(&{kernel})")
        pos = close + 3


def main(argv: list[str]) -> int:
    src, dst = Path(argv[1]), Path(argv[2])
    body = rewrite(src.read_text())
    text = f'#line 1 "{src.as_posix()}"\n{body}'
    if not dst.exists() or dst.read_text() != text:   # unchanged output: no recompile
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
