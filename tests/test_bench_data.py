"""The benchmark data folder comes from the caller or MEDSEG_BENCH_DATA, never from the install layout."""

from __future__ import annotations

import pytest

from medseg_fast.bench import data


def test_no_folder_named_means_none(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    assert data.benchmark_dir() is None
    assert data.load_benchmark_volume("ct.nii.gz") is None


def test_argument_wins_over_environment(monkeypatch, tmp_path):
    other = tmp_path / "env"
    other.mkdir()
    monkeypatch.setenv(data.ENV_VAR, str(other))
    assert data.benchmark_dir() == other
    assert data.benchmark_dir(tmp_path) == tmp_path


def test_missing_folder_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="MEDSEG_BENCH_DATA must name an existing folder.*absent"):
        data.benchmark_dir()
    with pytest.raises(ValueError, match="path must name an existing folder"):
        data.benchmark_dir(tmp_path / "nowhere")


def test_volume_read_with_its_spacing(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    import numpy as np

    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.75, 2.0))
    sitk.WriteImage(image, str(tmp_path / "v.nii.gz"))
    got, spacing = data.load_benchmark_volume("v.nii.gz", tmp_path)
    np.testing.assert_array_equal(got, array)
    assert spacing == (2.0, 0.75, 0.5)
    assert data.load_benchmark_volume("other.nii.gz", tmp_path) is None
