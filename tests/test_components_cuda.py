"""GPU parity of the connected-components family: CUDA results equal the CPU results exactly."""

from __future__ import annotations

import medseg_fast as mf
import numpy as np
import pytest
import scipy.ndimage as ndi

pytestmark = pytest.mark.cuda

RANK = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}


def _torch():
    import torch

    return torch


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 1, 13), (17, 31, 23), (40, 64, 70), (29, 37)])
@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
def test_cuda_label_equals_cpu_and_scipy(rng, shape, density):
    torch = _torch()
    x = rng.random(shape) < density
    conns = (4, 8) if len(shape) == 2 else (6, 18, 26)
    for conn in conns:
        gpu, n = mf.label(torch.from_numpy(x).cuda(), conn, return_num=True)
        assert gpu.is_cuda
        assert gpu.dtype == torch.int32
        ref, m = ndi.label(x, ndi.generate_binary_structure(x.ndim, RANK[conn]))
        assert n == m
        np.testing.assert_array_equal(gpu.cpu().numpy(), ref)


def test_cuda_multilabel_strided_and_postprocessing(rng):
    torch = _torch()
    x = ndi.median_filter(rng.integers(0, 4, (30, 40, 50)).astype(np.uint8), 3)
    t = torch.from_numpy(x).cuda()
    for view, host in [(t, x), (t.permute(2, 0, 1), x.transpose(2, 0, 1)), (t[::2, :, ::-1], x[::2, :, ::-1])]:
        np.testing.assert_array_equal(mf.label(view).cpu().numpy(), mf.label(np.ascontiguousarray(host)))
    np.testing.assert_array_equal(mf.largest_component(t, 2).cpu().numpy(), mf.largest_component(x, 2))
    np.testing.assert_array_equal(mf.remove_small_components(t, 30).cpu().numpy(), mf.remove_small_components(x, 30))
    np.testing.assert_array_equal(mf.keep_largest_per_class(t).cpu().numpy(), mf.keep_largest_per_class(x))
    m = x > 1
    np.testing.assert_array_equal(mf.fill_holes(torch.from_numpy(m).cuda()).cpu().numpy(), ndi.binary_fill_holes(m))
    np.testing.assert_array_equal(x, t.cpu().numpy())   # input unchanged


def test_cuda_cupy_input(rng):
    cupy = pytest.importorskip("cupy")
    x = rng.random((20, 21, 22)) < 0.4
    out = mf.label(cupy.asarray(x))
    assert isinstance(out, cupy.ndarray)
    np.testing.assert_array_equal(out.get(), mf.label(x))
