"""``medseg-fast bench``: --data reaches the suites (as the folder benchmark_dir() finds), results are written
atomically into --out (never into the checkout), bad folders are one-line errors."""

from __future__ import annotations

import json
import os
import types

import pytest
from medseg_fast import bench
from medseg_fast.bench import data as bench_data
from medseg_fast.bench.harness import Row
from medseg_fast.cli import main


@pytest.fixture
def probe_suite(monkeypatch):
    """A stand-in suite that records the benchmark folder it would read volumes from."""
    seen = {}

    def run(device, quick):
        seen["folder"] = bench_data.benchmark_dir()
        seen["device"], seen["quick"] = device, quick
        return [Row("probe", "case", "ours", 0.002, 0.0001, note="probe")]

    module = types.SimpleNamespace(NAME="probe", DESCRIPTION="records its data folder", run=run)
    monkeypatch.setattr(bench, "available_suites", lambda: ["probe"])
    monkeypatch.setattr(bench, "_load", lambda name: module)
    monkeypatch.delenv(bench_data.ENV_VAR, raising=False)
    return seen


def test_bench_data_folder_reaches_the_suites(probe_suite, tmp_path, capsys):
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    out = tmp_path / "results"
    rc = main(["bench", "--suite", "probe", "--quick", "--data", str(volumes), "--out", str(out), "--tag", "t"])
    assert rc == 0, capsys.readouterr().err
    assert probe_suite["folder"] == volumes
    assert probe_suite["quick"] is True
    assert bench_data.ENV_VAR not in os.environ  # restored after the run
    rows = json.loads((out / "t.json").read_text(encoding="utf-8"))["rows"]
    assert [r["impl"] for r in rows] == ["ours"]
    assert "| probe | case | ours | 2.00 |" in (out / "t.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == ["t.json", "t.md"]  # no temporary file left


def test_bench_without_data_uses_the_environment(probe_suite, tmp_path, monkeypatch, capsys):
    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv(bench_data.ENV_VAR, str(env))
    assert main(["bench", "--suite", "probe", "--out", str(tmp_path / "r")]) == 0, capsys.readouterr().err
    assert probe_suite["folder"] == env
    assert os.environ[bench_data.ENV_VAR] == str(env)


def test_bench_data_overrides_then_restores_the_environment(probe_suite, tmp_path, monkeypatch, capsys):
    env, arg = tmp_path / "env", tmp_path / "arg"
    env.mkdir()
    arg.mkdir()
    monkeypatch.setenv(bench_data.ENV_VAR, str(env))
    assert main(["bench", "--suite", "probe", "--data", str(arg), "--out", str(tmp_path / "r")]) == 0
    assert probe_suite["folder"] == arg
    assert os.environ[bench_data.ENV_VAR] == str(env)


def test_bench_missing_data_folder_is_one_line(probe_suite, tmp_path, capsys):
    rc = main(["bench", "--suite", "probe", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1
    assert "--data must name an existing folder of benchmark volumes, got" in err and "absent" in err
    assert "folder" not in probe_suite  # nothing ran
    assert not (tmp_path / "r").exists()


def test_run_suites_rejects_a_missing_folder(probe_suite, tmp_path):
    with pytest.raises(ValueError, match="path must name an existing folder of benchmark volumes"):
        bench.run_suites(["probe"], data=tmp_path / "absent", log=lambda s: None)


def test_write_results_is_atomic_and_verified(tmp_path, monkeypatch):
    """A failing fsync (full disk) leaves neither a result file nor a temporary file."""
    from medseg_fast.io import DataError

    def enospc(fd):
        raise OSError(28, "No space left on device")

    rows = [Row("s", "c", "ours", 0.001, 0.0)]
    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(DataError, match=r"t\.json: write failed \(No space left on device\)"):
        bench.write_results(rows, tmp_path, "cpu", "t")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    json_path, md_path = bench.write_results(rows, tmp_path, "cpu", "t")
    assert json.loads(json_path.read_text(encoding="utf-8"))["rows"][0]["suite"] == "s"
    assert md_path.read_text(encoding="utf-8").startswith("# Benchmark results: t")
