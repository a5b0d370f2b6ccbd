"""The mapped resampling kernel (_C.resample_mapped, behind medseg_fast.monai.Spacing) against
scipy.ndimage.map_coordinates and torch grid_sample on axis-aligned affine grids, plus its
argument checks. Sample k of axis a reads the input at offsets[a] + scales[a] * k."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medseg_fast import _backend as B
from medseg_fast import _ext

C = _ext.cpu_module()


def _run(x: np.ndarray, out_shape, scales, offsets, order: int, boundary: str = "edge",
         half_even: bool = False) -> np.ndarray:
    """(C, *out_shape) float64 of the kernel on (C, s0, s1, s2) `x`."""
    spec = C.ResampleSpec(in_shape=x.shape, out_shape=(x.shape[0], *out_shape), orders=(0, order, order, order))
    out = np.empty((x.shape[0], *out_shape), np.float64)
    xv = B.view(x, "x")
    C.resample_mapped(spec, [1.0, *scales], [0.0, *offsets], boundary, half_even, B.describe(xv),
                      B.describe(B.view(out, "out", writable=True)))
    return out


def _grid(out_shape, scales, offsets) -> np.ndarray:
    axes = [o + s * np.arange(n, dtype=np.float64) for n, s, o in zip(out_shape, scales, offsets)]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


CASES = [((9, 13, 7), (11, 6, 15), (0.77, 2.1, 0.43), (0.3, -0.6, 0.1)),
         ((5, 1, 17), (8, 3, 9), (0.6, 0.0, 1.9), (-0.4, 0.0, 0.25)),
         ((12, 10, 11), (12, 10, 11), (-1.0, 1.0, 1.0), (11.0, 0.0, 0.0)),      # a flip, other axes identity
         ((7, 8, 6), (9, 4, 12), (0.71, 2.3, 0.47), (-1.3, 0.8, -0.9))]          # samples beyond the edges


@pytest.mark.parametrize(("in_shape", "out_shape", "scales", "offsets"), CASES)
@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_matches_scipy_map_coordinates(in_shape, out_shape, scales, offsets, order, dtype, rng):
    """scipy mode 'nearest' (its 12 edge copies and prefilter for order 3): equal to 1e-12 relative."""
    x = (rng.normal(size=(2, *in_shape)) * 300).astype(dtype)
    got = _run(x, out_shape, scales, offsets, order)
    grid = _grid(out_shape, scales, offsets)
    for c in range(x.shape[0]):
        ref = ndimage.map_coordinates(x[c].astype(np.float64), grid, order=order, mode="nearest")
        np.testing.assert_allclose(got[c], ref, rtol=1e-12, atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize(("in_shape", "out_shape", "scales", "offsets"), CASES)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["border", "zeros"])
def test_matches_torch_grid_sample(in_shape, out_shape, scales, offsets, mode, padding, rng):
    """grid_sample(align_corners=True) on the same index grid: edge clamping or zero padding,
    nearest ties to even."""
    torch = pytest.importorskip("torch")
    x = rng.normal(size=(2, *in_shape)) * 300
    got = _run(x, out_shape, scales, offsets, 1 if mode == "bilinear" else 0,
               "edge" if padding == "border" else "zeros", half_even=True)
    grid = _grid(out_shape, scales, offsets)
    n = np.asarray(in_shape, np.float64).reshape(3, 1, 1, 1)
    norm = np.where(n > 1, 2 * grid / np.maximum(n - 1, 1) - 1, 0.0)        # align_corners=True normalisation
    g = torch.from_numpy(np.ascontiguousarray(norm[::-1].transpose(1, 2, 3, 0)))[None]
    ref = torch.nn.functional.grid_sample(torch.from_numpy(x)[None], g, mode=mode, padding_mode=padding,
                                          align_corners=True)[0].numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-9 * np.abs(ref).max())


def test_threads_do_not_change_results(rng):
    import medseg_fast as mf

    x = rng.normal(size=(3, 17, 19, 23)).astype(np.float32)
    runs, old = [], mf.get_num_threads()
    try:
        for n in (1, 2, 3):
            mf.set_num_threads(n)
            runs.append(_run(x, (21, 9, 30), (0.8, 2.0, 0.75), (0.1, -0.3, 0.2), 3))
    finally:
        mf.set_num_threads(old)
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_bad_arguments(rng):
    x = rng.normal(size=(1, 6, 6, 6))
    with pytest.raises(ValueError, match="spline padding"):
        _run(x, (4, 4, 4), (1.0, 1.0, 1.0), (-12.5, 0.0, 0.0), 3)
    with pytest.raises(ValueError, match="edge boundary"):
        _run(x, (4, 4, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), 3, "zeros")
    with pytest.raises(ValueError, match="boundary"):
        _run(x, (4, 4, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), 1, "reflect")
    with pytest.raises(ValueError, match="finite"):
        _run(x, (4, 4, 4), (np.nan, 1.0, 1.0), (0.0, 0.0, 0.0), 1)
    with pytest.raises(ValueError, match="orders"):
        _run(x, (4, 4, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), 2)
