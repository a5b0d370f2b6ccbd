"""The pipeline rooms import only down the layers (issue 16): kernels < io, models < data < pipelines, bench <
cli; no import of this package hidden inside a function there (the old way around a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import medseg_fast
import pytest

ROOT = Path(medseg_fast.__file__).parent
# higher imports lower; unlisted modules (the kernels, losses, _backend, ...) are the floor, 0
LAYERS = {"io": 1, "models": 1, "data": 2, "pipelines": 3, "bench": 3, "cli": 4}
CHECKED = ("io", "models", "data", "pipelines")


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(target module, line, inside a function) for every import of this package in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [target]
            if not node.module:  # from .. import x: x may be a submodule
                targets = [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t == "medseg_fast" or t.startswith("medseg_fast."):
                yield t, node.lineno, id(node) in in_function


def _files():
    for room in CHECKED:
        yield from sorted((ROOT / room).rglob("*.py"))
    yield ROOT / "bench" / "__init__.py"
    yield ROOT / "losses" / "factory.py"


@pytest.mark.parametrize("path", list(_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_down_the_layers(path):
    own = _layer(_module_name(path))
    for target, line, local in _imports(path):
        assert _layer(target) <= own, f"{path.name}:{line} imports {target} from a higher layer"
        assert not local, f"{path.name}:{line} imports {target} inside a function"


def test_no_pipeline_seam_left():
    assert not (ROOT / "pipelines" / "_ops.py").exists()
    for path in _files():
        assert "MEDSEG_FAST_PIPELINE_FALLBACK" not in path.read_text(encoding="utf-8"), path


def test_split_io_keeps_every_name():
    import medseg_fast.io as mio

    for name in ("Meta", "DataError", "read_image", "write_image", "resample", "atomic_path", "is_image_path",
                 "IMAGE_SUFFIXES", "strip_suffix", "write_text_atomic", "is_temp_name", "clean_stale_temp_files",
                 "check_image_file", "check_zip", "_tmp_name"):
        assert hasattr(mio, name), name
    assert set(mio.__all__) <= set(dir(mio))
    for path in (ROOT / "io").glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 500, path


def test_version_in_its_own_module():
    from medseg_fast._version import __version__

    assert medseg_fast.__version__ == __version__
