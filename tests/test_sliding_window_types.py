"""The typed boundary of the sliding-window kernels (SwGrid, SwRegion, SwImportance) and the layer split."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from medseg_fast import SlidingWindow, _ext
from medseg_fast import _backend as B
from medseg_fast import _sliding_kernels, _sliding_plan
from medseg_fast import sliding_window as sw_module

C = _ext.cpu_module()
MODULES = [pytest.param(C, id="cpu"),
           pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not _ext.cuda_built(),
                                                                   reason="medseg_fast built without CUDA"))]


def _module(which):
    return _ext.cuda_module() if which == "cuda" else which


@pytest.mark.parametrize("which", MODULES)
def test_structs_by_name(which):
    mod = _module(which)
    origins = np.array([0, 2], np.int64)
    ptr = origins.__array_interface__["data"][0]
    grid = mod.SwGrid(image=(1, 4, 6), patch=(1, 2, 4), count=(1, 2, 2), origins=(ptr, ptr, ptr))
    assert (grid.image, grid.patch, grid.count, grid.windows) == ([1, 4, 6], [1, 2, 4], [1, 2, 2], 4)
    region = mod.SwRegion(batch=2, channels=3, origin=(0, 1, 0), shape=(1, 3, 6), wrap=(2, 0, 0), divide_last=True)
    assert (region.batch, region.channels, region.origin, region.shape, region.wrap) == \
        (2, 3, [0, 1, 0], [1, 3, 6], [2, 0, 0])
    assert (region.assign_first, region.divide_last) == (False, True)
    imp = mod.SwImportance(map=ptr)
    assert (imp.map, imp.scale, imp.row, imp.floor) == (ptr, 0, 0, 0.0)


@pytest.mark.parametrize("which", MODULES)
def test_structs_reject_bad_fields(which):
    mod = _module(which)
    ptrs = (8, 8, 8)
    with pytest.raises(TypeError):
        mod.SwGrid(image=(1, 4, 6), patch=(1, 2, 4), counts=(1, 2, 2), origins=ptrs)      # no field "counts"
    with pytest.raises(TypeError):
        mod.SwGrid((1, 4, 6), (1, 2, 4), (1, 2, 2), ptrs)                                  # keywords only
    with pytest.raises(TypeError):
        mod.SwGrid(image=(4, 6), patch=(1, 2, 4), count=(1, 2, 2), origins=ptrs)          # 3 axes
    with pytest.raises(ValueError, match="count must be >= 1 on every axis, got axis 0: image=1, patch=1, count=0"):
        mod.SwGrid(image=(1, 4, 6), patch=(1, 2, 4), count=(0, 2, 2), origins=ptrs)
    with pytest.raises(ValueError, match="origins must not be null"):
        mod.SwGrid(image=(1, 4, 6), patch=(1, 2, 4), count=(1, 2, 2), origins=(8, 0, 8))
    with pytest.raises(ValueError, match=r"wrap\[2\] must be 0"):
        mod.SwRegion(batch=1, channels=1, origin=(0, 0, 0), shape=(1, 2, 3), wrap=(0, 0, 2))
    with pytest.raises(ValueError, match="shape and wrap must be >= 0, got axis 1: shape=-2, wrap=0"):
        mod.SwRegion(batch=1, channels=1, origin=(0, 0, 0), shape=(1, -2, 3))
    with pytest.raises(TypeError):
        mod.SwRegion(batch=1, channels=1, origin=(0, 0), shape=(1, 2, 3))
    with pytest.raises(TypeError):
        mod.SwRegion(batch=1, channels=1, origin=(0, 0, 0), shape=(1, 2, 3), ring=2)
    with pytest.raises(ValueError, match="map must not be null"):
        mod.SwImportance(map=0)
    with pytest.raises(ValueError, match="scale and row must be given together"):
        mod.SwImportance(map=8, scale=8)


def test_old_positional_tuples_are_refused():
    x = np.ones((1, 1, 4, 6), np.float32)
    plan = SlidingWindow((4, 6), (2, 4))
    out = np.empty((len(plan), 1, 2, 4), np.float32)
    grid_tuple = ([1, 4, 6], [1, 2, 4], [1, 3, 2], [8, 8, 8])
    with pytest.raises(TypeError):
        C.sw_gather(grid_tuple, B.describe(B.view(x), [1, 1, 0, 6, 1]), 1, 1,
                    B.describe(B.view(out), [8, 8, 0, 4, 1]), 0, len(plan))


def test_plan_descriptors_match_the_plan():
    plan = SlidingWindow((10, 7), (6, 4), overlap=0.5, positions="monai")
    grid, imp = plan._data_on(B.view(np.zeros((1, 1, 10, 7), np.float32)))
    assert grid.image == [1, 10, 7] and grid.patch == [1, 6, 4]
    assert grid.count == [1] + [len(a) for a in plan.axis_origins]
    assert imp.map == plan.importance_map.__array_interface__["data"][0]
    assert imp.scale != 0 and imp.floor == plan._factors[2]   # MONAI's Gaussian is separable
    nnunet = SlidingWindow((10, 7), (6, 4), overlap=0.5, positions="nnunet")
    assert nnunet._data_on(B.view(np.zeros((1, 1, 10, 7), np.float32)))[1].scale == 0
    region = plan._region_desc(B.view(np.zeros(1, np.float32)), 2, 3, (1, 0), (4, 7), ring=6, rows=2,
                               in_order=(True, True))
    assert (region.origin, region.shape, region.wrap) == ([0, 1, 0], [1, 2, 7], [0, 6, 0])
    assert region.assign_first and region.divide_last


def test_plan_math_is_shared_with_the_reference():
    from medseg_fast.reference import sliding_window as ref

    assert ref.WindowPlan is _sliding_plan.WindowPlan
    assert issubclass(SlidingWindow, _sliding_plan.WindowPlan)
    assert sw_module.SlidingWindow is _sliding_kernels.SlidingWindow
    plan = _sliding_plan.WindowPlan((3, 10), (6, 4), overlap=0.5)
    assert plan.padding == ((1, 2), (0, 0))
    assert [a.tolist() for a in plan.axis_origins] == [[-1], [0, 2, 4, 6]]
    assert _sliding_plan.window_starts(10, 4, 0.5, "monai") == [0, 2, 4, 6]
    np.testing.assert_array_equal(_sliding_plan.importance_map((6, 4), "gaussian", 0.125, "nnunet"),
                                  plan.importance_map)
    with pytest.raises(ValueError, match=r"positions must be one of \('nnunet', 'monai'\), got 'nnU-Net'"):
        _sliding_plan.window_starts(10, 4, 0.5, "nnU-Net")


def test_layers_import_downwards_only():
    # The plan math needs neither the kernels nor torch; the facade does not import the runner.
    code = ("import sys, medseg_fast._sliding_plan as p, medseg_fast._sliding_kernels as k; "
            "assert 'torch' not in sys.modules, 'torch'; "
            "assert not hasattr(p, 'B') and not hasattr(p, 'SlidingWindow'); "
            "assert not hasattr(k, 'sliding_window_inference'); print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.skipif(not _ext.cuda_built(), reason="medseg_fast built without CUDA")
def test_cpu_and_cuda_modules_expose_the_same_types():
    G = _ext.cuda_module()
    for name in ("SwGrid", "SwRegion", "SwImportance"):
        assert {n for n in dir(getattr(C, name)) if not n.startswith("_")} == \
            {n for n in dir(getattr(G, name)) if not n.startswith("_")}
    # Module-local types of the same C++ type: the CPU kernels load a region made by the CUDA module.
    plan = SlidingWindow((4, 6), (2, 4), mode="constant")
    acc = np.ones((1, 1, 4, 6), np.float32)
    out = np.empty((1, 1, 4, 6), np.float32)
    grid, imp = plan._data_on(B.view(acc))
    region = G.SwRegion(batch=1, channels=1, origin=(0, 0, 0), shape=(1, 4, 6))
    C.sw_finalize(grid, imp, B.describe(B.view(acc), [24, 24, 0, 6, 1]), region, B.describe(None, [0] * 4),
                  B.describe(B.view(out), [24, 24, 0, 6, 1]), False)
    np.testing.assert_array_equal(out, 1.0 / plan.weight_map()[None, None])
