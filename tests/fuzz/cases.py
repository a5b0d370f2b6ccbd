"""Fuzz cases for every public function: generators, a replayable case format and the checks.

A case is plain JSON: ``{"target": name, "args": {...}}`` where an array argument is a spec
``{"__array__": {...}}`` (kind, dtype, shape, layout, fill, seed) that `build` turns into the same
array every time, so a logged case is its own reproducer
(``python tests/fuzz/worker.py --replay '<case json>'``).

`run_case` calls the target and asserts the contract that holds for any input:

- only ValueError / TypeError escape, with a non-empty message; complex and other non-real
  dtypes raise TypeError;
- the inputs are unchanged (bytes compared before and after, which also catches a kernel writing
  through a read-only buffer);
- the output has the documented kind (numpy in, numpy out; torch in, torch out), shape and dtype;
- layout invariance: the same call on C-contiguous native-endian copies of the inputs gives the
  same outcome (the same exception type, or equal results: exact for integers, a few ulp for
  float reductions whose summation order follows the memory order);
- thread invariance: that call at ``set_num_threads(1)`` and at 3 threads gives bit-identical
  results;
- cheap oracles where they exist (scipy.ndimage.label, distance_transform_edt, numpy
  statistics, bincount confusion matrices, an identity predictor in sliding-window inference).
"""

from __future__ import annotations

import collections
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

# ----------------------------------------------------------------------------- arrays
NP_DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
             "float16", "float32", "float64", ">i2", ">u2", ">i4", ">f4", ">f8", "complex64", "complex128"]
TORCH_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
                "float64", "uint16", "uint32", "uint64", "complex64"]
NP_LAYOUTS = ["C", "C", "F", "neg", "step", "broadcast", "readonly", "unaligned", "transposed"]
TORCH_LAYOUTS = ["C", "C", "transposed", "expanded", "channels_last", "slice", "unaligned"]
AXIS_SIZES = [2, 3, 5, 7, 1, 11, 4, 13, 6, 0]
MAX_VOXELS = 2500


def is_complex(dtype: str) -> bool:
    return dtype.startswith("complex")


def is_float(dtype: str) -> bool:
    return "float" in dtype or dtype in (">f4", ">f8")


def is_int(dtype: str) -> bool:
    return not (is_float(dtype) or is_complex(dtype) or dtype == "bool")


def _torch():
    import torch

    return torch


def _values(shape: tuple[int, ...], dtype: str, fill: str, rng: np.random.Generator, k: int) -> np.ndarray:
    """Native-endian values for `dtype` (complex gets an imaginary part)."""
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == "bool" or fill == "binary":
        v = rng.random(n) < 0.45
    elif fill == "labels":
        v = rng.integers(0, max(k, 1), n)
    elif fill == "special" and (is_float(dtype) or is_complex(dtype)):
        pool = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 3.0e38, -3.0e38, 1e-40, 65504.0, 1e300])
        v = np.where(rng.random(n) < 0.5, rng.choice(pool, n), rng.normal(0, 100, n))
    elif fill in ("special", "full") and is_int(dtype):
        info = np.iinfo(np.dtype(dtype.lstrip("<>=")) if dtype[0] in "<>" else dtype)
        v = rng.integers(int(info.min), int(info.max), n, endpoint=True, dtype=np.dtype(info.dtype))
    else:  # "float": CT-like values
        v = rng.normal(0, 400, n)
    v = np.asarray(v).reshape(shape)
    if dtype.startswith("uint") and v.dtype.kind == "f":
        v = np.abs(v)
    with np.errstate(invalid="ignore", over="ignore"):
        if dtype == "bfloat16":
            return np.asarray(v.astype(np.float32))
        out = v.astype(np.dtype(dtype).newbyteorder("=") if dtype[0] in "<>" else dtype)
    if is_complex(dtype):
        out = out + 1j * rng.normal(0, 1, shape).astype(out.dtype)
    return np.asarray(out)   # ufuncs turn 0-d arrays into scalars


def build(spec: dict) -> Any:
    """The array described by `spec` (deterministic)."""
    shape = tuple(spec["shape"])
    dtype, layout, kind = spec["dtype"], spec["layout"], spec["kind"]
    rng = np.random.default_rng(spec["seed"])
    k = spec.get("k", 3)
    nd = len(shape)
    axis = spec["seed"] % nd if nd else 0
    perm = list(rng.permutation(nd)) if nd else []

    def make(sh):
        v = _values(tuple(sh), dtype, spec["fill"], rng, k)
        if kind == "numpy":
            return v.astype(dtype) if dtype[0] in "<>" else v
        torch = _torch()
        return torch.from_numpy(np.ascontiguousarray(v)).to(getattr(torch, dtype))

    if kind == "numpy":
        if layout == "F":
            return np.asfortranarray(make(shape))
        if layout == "neg" and nd:
            return make(shape)[tuple(slice(None, None, -1) if a % 2 == axis % 2 else slice(None) for a in range(nd))]
        if layout == "step" and nd:
            big = list(shape)
            big[axis] = 2 * shape[axis] + 1
            return make(big)[tuple(slice(1, None, 2) if a == axis else slice(None) for a in range(nd))]
        if layout == "broadcast" and nd:
            small = list(shape)
            small[axis] = 1
            return np.broadcast_to(make(small), shape)
        if layout == "readonly":
            a = make(shape)
            a.flags.writeable = False
            return a
        if layout == "unaligned":
            a = make(shape)
            buf = bytearray(a.nbytes + 1)
            m = np.frombuffer(buf, a.dtype, count=a.size, offset=1).reshape(shape)
            m[...] = a
            return m
        if layout == "transposed" and nd:
            return make([shape[p] for p in perm]).transpose(list(np.argsort(perm)))
        return make(shape)
    torch = _torch()
    if layout == "transposed" and nd:
        return make([shape[p] for p in perm]).permute(*[int(i) for i in np.argsort(perm)])
    if layout == "expanded" and nd:
        small = list(shape)
        small[axis] = 1
        return make(small).expand(*shape)
    if layout == "channels_last" and nd in (4, 5):
        fmt = torch.channels_last if nd == 4 else torch.channels_last_3d
        return make(shape).contiguous(memory_format=fmt)
    if layout == "slice" and nd:
        big = list(shape)
        big[axis] = 2 * shape[axis] + 1
        t = make(big)
        return t[tuple(slice(1, None, 2) if a == axis else slice(None) for a in range(nd))]
    if layout == "unaligned":
        t = make(shape).contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        if t.numel() == 0:
            return t
        return torch.frombuffer(bytearray(b"\0" + raw), dtype=t.dtype, offset=1, count=t.numel()).reshape(shape)
    return make(shape)


def canonical(x: Any) -> Any:
    """A C-contiguous, native-endian, aligned, writable copy with the same values."""
    if isinstance(x, np.ndarray):
        return np.array(x, dtype=x.dtype.newbyteorder("="), order="C", copy=True)
    return x.detach().clone(memory_format=_torch().contiguous_format)


def snapshot(x: Any) -> bytes:
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x).tobytes()
    torch = _torch()
    flat = torch.empty(x.numel(), dtype=x.dtype)
    flat.copy_(x.detach().reshape(-1))
    return flat.view(torch.uint8).numpy().tobytes() if x.numel() else b""


# ----------------------------------------------------------------------------- strategies
@st.composite
def shapes(draw, min_nd: int = 0, max_nd: int = 4, nonempty: bool = False, ndims=None) -> list[int]:
    nd = draw(st.sampled_from(ndims)) if ndims else draw(st.integers(min_nd, max_nd))
    sizes = [s for s in AXIS_SIZES if s > 0] if nonempty else AXIS_SIZES
    shape = [draw(st.sampled_from(sizes)) for _ in range(nd)]
    assume(int(np.prod(shape, dtype=np.int64)) <= MAX_VOXELS)
    return shape


@st.composite
def arrays(draw, shape=None, dtypes=None, fills=("float", "labels", "binary", "special", "full"),
           kinds=("numpy", "numpy", "torch"), min_nd=0, max_nd=4, k=None, nonempty=False, ndims=None) -> dict:
    kind = draw(st.sampled_from(kinds))
    pool = dtypes or (NP_DTYPES if kind == "numpy" else TORCH_DTYPES)
    if kind == "torch":
        pool = [d for d in pool if d in TORCH_DTYPES] or ["float32"]
    else:
        pool = [d for d in pool if d in NP_DTYPES] or ["float32"]
    dtype = draw(st.sampled_from(pool))
    if shape is None:
        shape = draw(shapes(min_nd, max_nd, nonempty, ndims))
    layout = draw(st.sampled_from(NP_LAYOUTS if kind == "numpy" else TORCH_LAYOUTS))
    spec = {"kind": kind, "dtype": dtype, "shape": list(shape), "layout": layout,
            "fill": draw(st.sampled_from(fills)), "seed": draw(st.integers(0, 2**31 - 1))}
    spec["k"] = k if k is not None else draw(st.integers(1, 6))
    return {"__array__": spec}


BAD_VALUES = [None, "x", -1, 0, float("nan"), float("inf"), -1e300, [], [1, 2, 3, 4, 5], True, {"a": 1}]
bad = st.sampled_from(BAD_VALUES)


def _one_in(i: int, p: int) -> bool:
    # Hypothesis draws 0 and other small integers far more often than 1 / range; hashing makes
    # "about one in p" hold.
    return zlib.crc32(str(i).encode()) % p == 0


def maybe_bad(strategy, p_bad: int = 16):
    """`strategy`, or (about 1 in `p_bad`) a value of the wrong type or range."""
    return st.tuples(st.integers(0, 2**32 - 1), strategy, bad).map(lambda t: t[2] if _one_in(t[0], p_bad) else t[1])


def mostly(good, rare, p: int = 6):
    """`good`, or about 1 in `p` draws from `rare`."""
    return st.tuples(st.integers(0, 2**32 - 1), good, rare).map(lambda t: t[2] if _one_in(t[0], p) else t[1])


floats_edge = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                        st.sampled_from([0.0, 1e-30, 3.4e38, 1e39, -1e39, 1e308]))
floats_any = st.one_of(st.floats(-2000, 2000), floats_edge)
spacing_st = mostly(st.one_of(st.none(), st.lists(st.sampled_from([1.0, 0.5, 2.0, 0.7, 3.0]), min_size=1, max_size=4)),
                    st.sampled_from([1.5, [float("nan"), 1, 1], [0, 1, 1], [-1.0, 1.0, 1.0], [1, 1], "1,1"]), 8)
connectivity_st = mostly(st.sampled_from([None, 6, 26, 18, 4, 8]), st.sampled_from([5, 0, -6, 27, 6.0, "6"]), 8)
SPATIAL_NDIMS = [3, 3, 2, 3, 2, 1, 4]
positive_int = st.sampled_from([1, 2, 3, 5])


# ----------------------------------------------------------------------------- targets
@dataclass
class Target:
    name: str
    gen: Callable[[Callable], dict]         # draw -> args (arrays as specs)
    call: Callable[[dict], Any]             # built args -> result
    check: Callable[[Any, dict], None] | None = None   # result contract (args built)
    exact: bool = True                      # layout invariance exact (else a few ulp)
    layout_invariance: bool = True


TARGETS: dict[str, Target] = {}


def target(name, gen, call, check=None, exact=True, layout_invariance=True):
    TARGETS[name] = Target(name, gen, call, check, exact, layout_invariance)


def _mf():
    import medseg_fast

    return medseg_fast


def _metrics():
    from medseg_fast import metrics

    return metrics


def kind_of(x) -> str:
    if isinstance(x, np.ndarray):
        return "numpy"
    return "torch" if type(x).__module__.startswith("torch") else type(x).__name__


def to_np(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        # ml_dtypes' bfloat16 has numpy kind "V": compare (and check NaN) as float32.
        return x.astype(np.float32) if x.dtype.name == "bfloat16" else x
    t = x.detach().cpu()
    if t.dtype == _torch().bfloat16:
        t = t.float()
    return t.numpy()


def assert_array(result, like, shape, dtype=None):
    assert kind_of(result) == kind_of(like), f"result kind {type(result)} for a {kind_of(like)} input"
    assert tuple(result.shape) == tuple(shape), f"result shape {tuple(result.shape)}, expected {tuple(shape)}"
    if dtype is not None:
        got = str(result.dtype).replace("torch.", "")
        assert got == dtype, f"result dtype {got}, expected {dtype}"


def native_name(x) -> str:
    return str(x.dtype).replace("torch.", "") if not isinstance(x, np.ndarray) else x.dtype.newbyteorder("=").name


OUT_DTYPES = mostly(st.sampled_from(["float32", "float16", "bfloat16"]), st.sampled_from(["float64", "int8", None, "complex64"]), 10)


def _out_spec(draw, shape):
    choice = draw(mostly(st.sampled_from(["none", "none", "fresh"]),
                         st.sampled_from(["wrong_shape", "unaligned", "readonly", "byteswapped"]), 6))
    return None if choice == "none" else {"__out__": choice, "shape": list(shape)}


def _make_out(spec, x, dtype):
    if spec is None:
        return None
    shape = tuple(spec["shape"])
    np_dtype = np.float32 if dtype in (None, "float32") else (np.float16 if dtype == "float16" else np.float64)
    if spec["__out__"] == "wrong_shape":
        shape = (*shape, 2)
    if isinstance(x, np.ndarray):
        if spec["__out__"] == "unaligned":
            n = int(np.prod(shape, dtype=np.int64))
            return np.frombuffer(bytearray(n * np.dtype(np_dtype).itemsize + 1), np_dtype, count=n,
                                 offset=1).reshape(shape)
        out = np.zeros(shape, np.dtype(np_dtype).newbyteorder(">") if spec["__out__"] == "byteswapped" else np_dtype)
        if spec["__out__"] == "readonly":
            out.flags.writeable = False
        return out
    torch = _torch()
    return torch.zeros(shape, dtype=getattr(torch, np.dtype(np_dtype).name))


def _with_out(d, args, lead=lambda a: []):
    """args plus an ``out`` spec (usually none) shaped ``lead + x.shape``."""
    args["out"] = _out_spec(d, [*lead(args), *args["x"]["__array__"]["shape"]])
    return args


def _returns_out(a, call):
    out = _make_out(a["out"], a["x"], a["dtype"])
    a["_out"] = out
    r = call(out)
    if out is not None:
        assert r is out, "a call given out= must return out"
        # out= changes where the result goes, never what it is.
        equal(to_np(out).astype(np.float64), to_np(call(None)).astype(np.float64), True, "out= result vs a fresh result")
    return r


# window_bounds
target("window_bounds",
       lambda d: {"center": d(mostly(st.floats(-2000, 2000), floats_edge, 3)),
                  "width": d(mostly(st.floats(0.001, 4000), st.one_of(floats_edge, bad), 3)),
                  "convention": d(maybe_bad(st.sampled_from(["simple", "dicom", "legacy"])))},
       lambda a: _mf().window_bounds(a["center"], a["width"], a["convention"]),
       lambda r, a: (isinstance(r, tuple) and len(r) == 2 and all(isinstance(v, float) for v in r)
                     and (not all(map(math.isfinite, r)) or r[0] <= r[1])) or _fail(f"window_bounds gave {r!r}"))


def _fail(msg):
    raise AssertionError(msg)


def _check_window(r, a, n_windows=None):
    x = a["x"]
    shape = tuple(x.shape) if n_windows is None else (n_windows, *x.shape)
    assert_array(r, x, shape, a.get("dtype") or "float32")
    lo, hi = sorted(a.get("out_range", (0.0, 1.0)))
    vals = to_np(r).astype(np.float64)
    xv = to_np(x).astype(np.float64)
    finite_in = np.isfinite(xv) if n_windows is None else np.broadcast_to(np.isfinite(xv), shape)
    if math.isfinite(lo) and math.isfinite(hi) and hi - lo < 1e30:
        tol = 1e-2 * max(1.0, hi - lo)
        sel = vals[finite_in]
        assert np.all((sel >= lo - tol) & (sel <= hi + tol)), (
            f"window output of finite input outside out_range=({lo}, {hi}): {sel[(sel < lo - tol) | (sel > hi + tol) | np.isnan(sel)][:5]}")


def _hu_gen(d):
    x = d(arrays(min_nd=0, max_nd=4))
    use_bounds = d(st.booleans())
    args = {"x": x, "dtype": d(OUT_DTYPES), "out_range": d(maybe_bad(st.sampled_from([(0.0, 1.0), (-1.0, 1.0), (0, 255), (1.0, 0.0)]), 20))}
    if use_bounds:
        args["lo"], args["hi"] = d(mostly(st.floats(-2000, 0), floats_edge, 5)), d(mostly(st.floats(0.5, 3000), floats_edge, 5))
    else:
        args["center"], args["width"] = d(mostly(st.floats(-1000, 1000), floats_edge, 5)), d(
            mostly(st.floats(1, 4000), floats_edge, 5))
    args["out"] = _out_spec(d, x["__array__"]["shape"])
    return args


def _hu_call(a):
    kw = {k: a[k] for k in ("center", "width", "lo", "hi") if k in a}
    out = _make_out(a["out"], a["x"], a["dtype"])
    a["_out"] = out
    r = _mf().hu_window(a["x"], out_range=a["out_range"], dtype=a["dtype"], out=out, **kw)
    if out is not None:
        assert r is out, "hu_window(out=...) must return out"
        fresh = _mf().hu_window(a["x"], out_range=a["out_range"], dtype=a["dtype"], **kw)
        equal(to_np(out).astype(np.float64), to_np(fresh).astype(np.float64), True, "out= result vs a fresh result")
    return r


def _hu_check(r, a):
    finite_window = all(math.isfinite(a[k]) for k in ("center", "width", "lo", "hi") if k in a)
    if finite_window and a["out"] is None:
        _check_window(r, a)
    elif a["out"] is None:
        assert_array(r, a["x"], a["x"].shape, a.get("dtype") or "float32")


target("hu_window", _hu_gen, _hu_call, _hu_check)

WINDOW_SPECS = mostly(
    st.lists(st.one_of(st.sampled_from(["brain", "lung", "bone", "liver", "subdural"]),
                       st.tuples(st.floats(-1000, 1000), st.floats(1, 3000))), min_size=1, max_size=4),
    st.lists(st.one_of(st.sampled_from(["nonexistent", "brain"]), st.tuples(floats_any, floats_any)), max_size=3))


def _mw_check(r, a):
    if a.get("_out") is None and all(isinstance(w, str) or all(math.isfinite(v) and abs(v) < 1e30 for v in w) for w in a["windows"]):
        _check_window(r, a, len(a["windows"]))


target("multi_window",
       lambda d: _with_out(d, {"x": d(arrays(max_nd=4)), "windows": d(maybe_bad(WINDOW_SPECS, 12)),
                               "dtype": d(OUT_DTYPES)}, lambda a: [len(a["windows"]) if isinstance(a["windows"], list) else 1]),
       lambda a: _returns_out(a, lambda out: _mf().multi_window(a["x"], a["windows"], dtype=a["dtype"], out=out)),
       _mw_check)

PERCENTILES_OK = st.one_of(st.sampled_from([(0.5, 99.5), (0, 100), (1, 99), (50.0, 50.0)]),
                           st.lists(st.floats(0, 100), min_size=2, max_size=2).map(lambda p: tuple(sorted(p))))
PERCENTILES = mostly(st.one_of(PERCENTILES_OK, st.lists(st.floats(0, 100), min_size=1, max_size=4).map(tuple)),
                     st.sampled_from([(50,), (), (99, 1), (-1, 50), (50, 101), (float("nan"),), "50", 50]), 6)


def _mask_arg(d, x):
    choice = d(mostly(st.sampled_from(["none", "none", "mask"]), st.just("other_shape"), 12))
    if choice == "mask":
        return d(arrays(shape=x["__array__"]["shape"], fills=("binary",), kinds=(x["__array__"]["kind"],)))
    if choice == "other_shape":
        return d(arrays(kinds=(x["__array__"]["kind"],), fills=("binary",)))
    return None


def _stats_gen(d):
    x = d(arrays(max_nd=4))
    return {"x": x, "mask": _mask_arg(d, x), "percentiles": d(PERCENTILES),
            "nan_policy": d(maybe_bad(st.sampled_from(["propagate", "omit", "raise"]), 20))}


def _stats_check(r, a):
    assert isinstance(r, dict) and {"mean", "std", "percentiles"} <= r.keys(), f"intensity_stats gave {r!r}"
    x = to_np(a["x"]).astype(np.float64)
    if a["mask"] is not None:
        x = x[to_np(a["mask"]) != 0]
    x = x.ravel()
    # numpy.percentile of a half-precision array interpolates in (and rounds to) that precision.
    rtol = 1e-6 if native_name(a["x"]) not in ("float16", "bfloat16") else 1e-2
    if x.size and np.all(np.isfinite(x)) and np.max(np.abs(x)) < 1e30:
        m = float(np.mean(x))
        assert math.isclose(r["mean"], m, rel_tol=1e-6, abs_tol=1e-6 * (1 + np.max(np.abs(x)))), (
            f"mean {r['mean']} vs numpy {m}")
        s = float(np.std(x))
        assert math.isclose(r["std"], s, rel_tol=1e-5, abs_tol=1e-6 * (1 + np.max(np.abs(x)))), (
            f"std {r['std']} vs numpy {s}")
        want = np.percentile(x, list(np.atleast_1d(a["percentiles"])))
        np.testing.assert_allclose(np.asarray(r["percentiles"], np.float64), want, rtol=rtol,
                                   atol=1e-6 * (1 + np.max(np.abs(x))), err_msg="percentiles vs numpy")
    elif x.size and not np.all(np.isfinite(x)) and np.max(np.abs(x[np.isfinite(x)]), initial=0) < 1e150:
        # Non-finite data: numpy's semantics (item 5), nan-aware functions under nan_policy="omit".
        omit = a["nan_policy"] == "omit"
        if omit and np.isnan(x).all():
            return
        with np.errstate(invalid="ignore", over="ignore"):
            mean, std = (np.nanmean(x), np.nanstd(x)) if omit else (np.mean(x), np.std(x))
            pct = (np.nanpercentile if omit else np.percentile)(x, list(np.atleast_1d(a["percentiles"])))
        for field, got, want in (("mean", r["mean"], mean), ("std", r["std"], std)):
            np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=f"{field} vs numpy on non-finite data")
        np.testing.assert_allclose(np.asarray(r["percentiles"], np.float64), pct, rtol=rtol, equal_nan=True,
                                   err_msg="percentiles vs numpy on non-finite data")


target("intensity_stats", _stats_gen,
       lambda a: _mf().intensity_stats(a["x"], mask=a["mask"], percentiles=a["percentiles"], nan_policy=a["nan_policy"]),
       _stats_check, exact=False)


def _norm_check(r, a):
    if a.get("_out") is None:
        assert_array(r, a["x"], a["x"].shape, a.get("dtype") or "float32")


def _ct_gen(d):
    x = d(arrays(max_nd=4))
    stats = d(mostly(st.none(), st.one_of(st.fixed_dictionaries(
        {"mean": floats_any, "std": floats_any, "percentiles": st.sampled_from([(-100.0, 100.0), (5.0, -5.0), (0.0,)])}),
        bad)))
    return _with_out(d, {"x": x, "mask": _mask_arg(d, x), "stats": stats, "percentiles": d(PERCENTILES),
                         "dtype": d(OUT_DTYPES)})


target("ct_normalize", _ct_gen,
       lambda a: _returns_out(a, lambda out: _mf().ct_normalize(a["x"], mask=a["mask"], stats=a["stats"],
                                                                percentiles=a["percentiles"], dtype=a["dtype"], out=out)),
       _norm_check, exact=False)


def _mr_gen(d):
    x = d(arrays(max_nd=4))
    return _with_out(d, {"x": x, "mask": _mask_arg(d, x), "method": d(maybe_bad(st.sampled_from(["zscore", "minmax"]))),
                         "percentiles": d(st.one_of(st.none(), PERCENTILES)), "dtype": d(OUT_DTYPES),
                         "out_range": d(maybe_bad(st.sampled_from([(0.0, 1.0), (-1.0, 1.0)]), 12))})


target("mr_normalize", _mr_gen,
       lambda a: _returns_out(a, lambda out: _mf().mr_normalize(
           a["x"], mask=a["mask"], method=a["method"], percentiles=a["percentiles"], dtype=a["dtype"],
           out_range=a["out_range"], out=out)),
       _norm_check, exact=False)


# components
LABEL_FILLS = ("labels", "binary", "labels", "full")
LABEL_DTYPES_NP = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", ">i2", ">u2",
                   ">i4"] * 3 + NP_DTYPES
LABEL_DTYPES_TORCH = ["bool", "uint8", "int8", "int16", "int32", "int64"] * 3 + TORCH_DTYPES
LABEL_DTYPES = LABEL_DTYPES_NP + LABEL_DTYPES_TORCH


def _label_gen(d):
    return {"x": d(arrays(ndims=SPATIAL_NDIMS, fills=LABEL_FILLS, dtypes=LABEL_DTYPES)), "connectivity": d(connectivity_st),
            "background": d(maybe_bad(st.sampled_from([0, 0, 1, 2]), 30)), "return_num": d(st.booleans())}


def _label_check(r, a):
    x = a["x"]
    labels, n = r if a["return_num"] else (r, None)
    assert_array(labels, x, x.shape, "int32")
    lab = to_np(labels)
    if n is not None:
        assert int(n) == (int(lab.max()) if lab.size else 0), f"return_num {n} but max label {lab.max()}"
    xv = to_np(x)
    conn = a["connectivity"]
    if native_name(x) == "bool" and a["background"] == 0 and xv.ndim in (2, 3) and xv.size:
        from scipy import ndimage

        full = conn is None or conn == (26 if xv.ndim == 3 else 8)
        structure = ndimage.generate_binary_structure(xv.ndim, xv.ndim if full else 1)
        if conn in (None, 6, 26, 4, 8) or (conn == 18 and xv.ndim == 3):
            if conn == 18:
                structure = ndimage.generate_binary_structure(3, 2)
            want, _ = ndimage.label(xv, structure)
            np.testing.assert_array_equal(lab, want, err_msg="label differs from scipy.ndimage.label")


target("label", _label_gen,
       lambda a: _mf().label(a["x"], a["connectivity"], background=a["background"], return_num=a["return_num"]),
       _label_check)


def _cs_check(r, a):
    x = to_np(a["x"])
    sizes = np.asarray(r["sizes"])
    assert int(sizes.sum()) == x.size, f"component_stats sizes sum {sizes.sum()} != {x.size} voxels"
    if x.size and not a["compact"]:
        want = np.bincount(x.astype(np.int64).ravel())
        np.testing.assert_array_equal(sizes, want, err_msg="component_stats sizes vs bincount")


target("component_stats",
       lambda d: {"labels": d(arrays(ndims=SPATIAL_NDIMS, fills=LABEL_FILLS, dtypes=LABEL_DTYPES)), "spacing": d(spacing_st),
                  "compact": d(maybe_bad(st.booleans(), 20))},
       lambda a: _mf().component_stats(a["labels"], spacing=a["spacing"], compact=a["compact"]),
       lambda r, a: _cs_check(r, {"x": a["labels"], "compact": a["compact"]}))


def _same_shape_dtype(r, a, key="x"):
    assert_array(r, a[key], a[key].shape, native_name(a[key]))


target("largest_component",
       lambda d: {"x": d(arrays(ndims=SPATIAL_NDIMS, fills=LABEL_FILLS, dtypes=LABEL_DTYPES)), "k": d(maybe_bad(positive_int, 30)),
                  "connectivity": d(connectivity_st)},
       lambda a: _mf().largest_component(a["x"], a["k"], a["connectivity"]),
       _same_shape_dtype)

target("remove_small_components",
       lambda d: {"x": d(arrays(ndims=SPATIAL_NDIMS, fills=LABEL_FILLS, dtypes=LABEL_DTYPES)),
                  "min_size": d(maybe_bad(st.sampled_from([0, 1, 2, 5, 2.5, 1e9]), 30)),
                  "spacing": d(spacing_st), "connectivity": d(connectivity_st)},
       lambda a: _mf().remove_small_components(a["x"], a["min_size"], spacing=a["spacing"],
                                               connectivity=a["connectivity"]),
       _same_shape_dtype)

target("keep_largest_per_class",
       lambda d: {"x": d(arrays(ndims=SPATIAL_NDIMS, fills=LABEL_FILLS, dtypes=LABEL_DTYPES)),
                  "classes": d(mostly(st.one_of(st.none(), st.lists(st.integers(0, 6), max_size=4)),
                                      st.one_of(bad, st.just([1.5]), st.just([-1])))),
                  "connectivity": d(connectivity_st)},
       lambda a: _mf().keep_largest_per_class(a["x"], a["classes"], a["connectivity"]),
       _same_shape_dtype)

target("fill_holes",
       lambda d: {"x": d(arrays(ndims=SPATIAL_NDIMS, fills=LABEL_FILLS, dtypes=LABEL_DTYPES)), "connectivity": d(connectivity_st)},
       lambda a: _mf().fill_holes(a["x"], a["connectivity"]),
       lambda r, a: assert_array(r, a["x"], a["x"].shape))


# distances
def _dt_check(r, a, signed=False):
    x = a["x"]
    assert_array(r, x, x.shape, a.get("dtype", "float32"))
    xv = to_np(x) != 0
    sp = a["spacing"]
    if not signed and not a.get("squared") and xv.size and (~xv).any() and (sp is None or isinstance(sp, list)):
        from scipy import ndimage

        want = ndimage.distance_transform_edt(xv, sampling=sp)
        np.testing.assert_allclose(to_np(r).astype(np.float64), want, rtol=1e-5, atol=1e-5,
                                   err_msg="distance_transform vs scipy edt")


target("distance_transform",
       lambda d: {"x": d(arrays(ndims=SPATIAL_NDIMS, fills=("binary", "labels", "float", "special"))),
                  "spacing": d(spacing_st), "squared": d(st.booleans()),
                  "dtype": d(maybe_bad(st.sampled_from(["float32", "float64"]), 30))},
       lambda a: _mf().distance_transform(a["x"], a["spacing"], squared=a["squared"], dtype=a["dtype"]),
       _dt_check)

target("signed_distance",
       lambda d: {"x": d(arrays(ndims=SPATIAL_NDIMS, fills=("binary", "labels", "special"))),
                  "spacing": d(spacing_st)},
       lambda a: _mf().signed_distance(a["x"], a["spacing"]),
       lambda r, a: _dt_check(r, a, signed=True))


# metrics
@st.composite
def pairs(draw, fills=("labels", "binary"), min_nd=1, max_nd=4):
    p = draw(arrays(min_nd=min_nd, max_nd=max_nd, fills=fills, dtypes=LABEL_DTYPES))
    spec = p["__array__"]
    if draw(mostly(st.just(False), st.just(True), 12)):
        g = draw(arrays(min_nd=min_nd, max_nd=max_nd, fills=fills))     # another shape / kind
    else:
        g = draw(arrays(shape=spec["shape"], fills=fills, kinds=(spec["kind"],), k=spec["k"], dtypes=LABEL_DTYPES))
    return p, g


def _scalar_metric(r, a):
    assert isinstance(r, float) or (np.ndim(r) in (1, 2) and kind_of(r) in ("numpy", "torch")), f"metric gave {r!r}"


CLASSES = mostly(st.one_of(st.none(), st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True)),
                 st.sampled_from([[1.5], [-1], [1, 1], "1"]))


def _overlap_gen(d):
    p, g = d(pairs())
    return {"pred": p, "gt": g, "classes": d(CLASSES), "layout": d(mostly(st.none(), st.sampled_from(["bc", "x"]), 5)),
            "include_background": d(maybe_bad(st.booleans(), 20))}


for _name in ("dice", "iou"):
    target(_name, _overlap_gen,
           (lambda n: lambda a: getattr(_metrics(), n)(a["pred"], a["gt"], classes=a["classes"], layout=a["layout"],
                                                       include_background=a["include_background"]))(_name),
           _scalar_metric, exact=False)

target("pixel_accuracy", lambda d: dict(zip(("pred", "gt"), d(pairs()))),
       lambda a: _metrics().pixel_accuracy(a["pred"], a["gt"]), _scalar_metric)


def _cm_check(r, a):
    p, g, n = to_np(a["pred"]).astype(np.int64).ravel(), to_np(a["gt"]).astype(np.int64).ravel(), a["num_classes"]
    r = to_np(r)
    assert r.shape == (n, n), f"confusion_matrix shape {r.shape}"
    if p.size and p.min() >= 0 and g.min() >= 0 and max(p.max(), g.max()) < n:
        want = np.bincount(g * n + p, minlength=n * n).reshape(n, n)
        if not np.array_equal(r, want):
            assert np.array_equal(r, want.T), f"confusion_matrix {r.tolist()} vs bincount {want.tolist()}"


target("confusion_matrix",
       lambda d: {**dict(zip(("pred", "gt"), d(pairs()))), "num_classes": d(maybe_bad(st.integers(1, 7)))},
       lambda a: _metrics().confusion_matrix(a["pred"], a["gt"], a["num_classes"]),
       _cm_check)

target("mean_iou",
       lambda d: {**dict(zip(("pred", "gt"), d(pairs()))), "num_classes": d(maybe_bad(st.integers(1, 7))),
                  "ignore_absent": d(st.booleans())},
       lambda a: _metrics().mean_iou(a["pred"], a["gt"], a["num_classes"], a["ignore_absent"]),
       _scalar_metric, exact=False)

CONVENTIONS = maybe_bad(st.sampled_from(["monai", "medpy", "deepmind"]))


def _surface_gen(d):
    p, g = d(pairs(fills=("binary",), min_nd=2, max_nd=3))
    return {"pred": p, "gt": g, "spacing": d(spacing_st), "convention": d(CONVENTIONS),
            "percentile": d(maybe_bad(st.sampled_from([None, 95, 100, 0, 50.5]), 10)),
            "directed": d(st.booleans()), "symmetric": d(st.booleans()),
            "tolerance": d(maybe_bad(st.sampled_from([0.0, 1.0, 2.5]), 10))}


def _finite_or_nan_or_inf(r, a):
    assert isinstance(r, float), f"surface metric gave {type(r)}: {r!r}"
    assert not (r < 0), f"surface metric negative: {r}"


target("hausdorff", _surface_gen,
       lambda a: _metrics().hausdorff(a["pred"], a["gt"], a["spacing"], percentile=a["percentile"],
                                      directed=a["directed"], convention=a["convention"]),
       _finite_or_nan_or_inf, exact=False)
target("average_surface_distance", _surface_gen,
       lambda a: _metrics().average_surface_distance(a["pred"], a["gt"], a["spacing"], symmetric=a["symmetric"],
                                                     convention=a["convention"]),
       _finite_or_nan_or_inf, exact=False)
target("surface_dice", _surface_gen,
       lambda a: _metrics().surface_dice(a["pred"], a["gt"], a["tolerance"], a["spacing"],
                                         convention=a["convention"]),
       lambda r, a: _finite_or_nan_or_inf(r, a) or (math.isnan(r) or r <= 1 + 1e-9) or _fail(f"surface dice {r}"),
       exact=False)

METRIC_NAMES = st.lists(st.sampled_from(["dice", "iou", "hd95", "assd", "hd", "nsd", "hd101", "x"]),
                        min_size=1, max_size=3)


def _eval_gen(d):
    p, g = d(pairs(min_nd=2, max_nd=3))
    ok_classes = st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True)
    return {"pred": p, "gt": g, "classes": d(mostly(ok_classes, st.one_of(st.just([1.5]), st.just([]), bad))),
            "spacing": d(spacing_st), "metrics": d(st.one_of(st.just(["dice", "iou", "hd95", "assd"]), METRIC_NAMES.filter(lambda m: not set(m) & {"hd101", "x"}),
                                   METRIC_NAMES))}


def _eval_check(r, a):
    assert isinstance(r, list) and len(r) == len(a["classes"]), f"evaluate gave {r!r}"


target("evaluate", _eval_gen,
       lambda a: _metrics().evaluate(a["pred"], a["gt"], a["classes"], a["spacing"], a["metrics"]),
       _eval_check, exact=False)


# resampling
def _rs_gen(d):
    x = d(arrays(min_nd=1, max_nd=4, fills=("float", "labels", "special", "binary"), nonempty=d(st.booleans())))
    nd = len(x["__array__"]["shape"])
    sp_nd = nd if nd <= 3 else 3
    ok_shape = st.lists(st.sampled_from([1, 2, 3, 4, 6, 9]), min_size=sp_nd, max_size=sp_nd)
    out_shape = d(mostly(ok_shape, st.one_of(st.none(), bad, st.lists(st.integers(-1, 5), min_size=1, max_size=4))))
    args = {"x": x, "out_shape": out_shape, "order": d(maybe_bad(st.sampled_from([0, 1, 3]))),
            "separate_z": d(maybe_bad(st.sampled_from([None, None, 0, 1, 2, True, False])))}
    if out_shape is None or d(mostly(st.just(False), st.just(True), 5)):
        args["spacing"] = d(st.one_of(st.lists(st.sampled_from([1.0, 0.5, 3.0, 5.0]), min_size=sp_nd, max_size=sp_nd), spacing_st))
        args["new_spacing"] = d(st.one_of(st.lists(st.sampled_from([1.0, 2.0, 0.7]), min_size=sp_nd, max_size=sp_nd), spacing_st))
    return args


def _rs_kw(a):
    return {k: a[k] for k in ("spacing", "new_spacing", "separate_z") if k in a}


def _rs_check(r, a):
    x = a["x"]
    assert kind_of(r) == kind_of(x), f"resample returned {type(r)} for {kind_of(x)}"
    if isinstance(a["out_shape"], list) and all(isinstance(s, int) for s in a["out_shape"]):
        assert tuple(r.shape[-len(a["out_shape"]):]) == tuple(a["out_shape"]), f"resample shape {tuple(r.shape)}"


target("resample", _rs_gen,
       lambda a: _mf().resample(a["x"], a["out_shape"], order=a["order"], **_rs_kw(a)),
       _rs_check, exact=False)


def _rl_gen(d):
    a = _rs_gen(d)
    a["x"]["__array__"]["fill"] = "labels"
    a["num_classes"] = d(maybe_bad(st.sampled_from([None, None, 7]), 10))
    a["order"] = d(maybe_bad(st.sampled_from([0, 1]), 10))
    return a


target("resample_labels", _rl_gen,
       lambda a: _mf().resample_labels(a["x"], a["out_shape"], num_classes=a["num_classes"], order=a["order"],
                                       **_rs_kw(a)),
       _rs_check)


# sliding window
def _sw_gen(d):
    nd = d(st.integers(1, 3))
    image = d(maybe_bad(st.lists(st.sampled_from([1, 2, 3, 5, 7, 11]), min_size=nd, max_size=nd), 40))
    patch = d(maybe_bad(st.lists(st.sampled_from([1, 2, 3, 4, 8]), min_size=nd, max_size=nd), 40))
    shape = [1, d(st.integers(1, 2)), *image] if isinstance(image, list) else [1, 1, 3]
    return {"image_size": image, "patch_size": patch,
            "x": d(arrays(shape=shape, dtypes=["float32", "float32", "float64", "float16", ">f4", "int16", "uint8",
                                               "bfloat16"], fills=("float", "labels"))),
            "overlap": d(maybe_bad(st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9]), 30)),
            "mode": d(maybe_bad(st.sampled_from(["gaussian", "constant"]), 40)),
            "sigma_scale": d(maybe_bad(st.sampled_from([0.125, 1.0, 1e-3]), 40)),
            "positions": d(maybe_bad(st.sampled_from(["nnunet", "monai"]), 40))}


def _sw_call(a):
    sw = _mf().SlidingWindow(a["image_size"], a["patch_size"], overlap=a["overlap"], mode=a["mode"],
                             sigma_scale=a["sigma_scale"], positions=a["positions"])
    # Gather every window of an image (any layout and dtype), scatter them back and finalize:
    # the image itself.
    img = a["x"]
    want = to_np(img).astype(np.float32)[0]
    roundtrip = want
    if len(sw) <= 4096:   # high overlap on small patches gives 10^5+ (duplicate) windows, as nnU-Net does
        acc = sw.new_accumulator(int(img.shape[1]), like=img)
        sw.scatter_add(acc, sw.gather(img, dtype="float32"), 0)
        roundtrip = to_np(sw.finalize(acc))
    return {"origins": np.asarray(sw.origins), "importance_map": np.asarray(sw.importance_map), "n": len(sw),
            "padding": np.asarray(sw.padding), "roundtrip": roundtrip, "img": want}


def _sw_check(r, a):
    origins, imap = r["origins"], r["importance_map"]
    im, pa = np.array(a["image_size"]), np.array(a["patch_size"])
    assert origins.shape == (r["n"], len(im)), f"origins shape {origins.shape}"
    pad = r["padding"]
    assert np.all(origins >= -pad[:, 0]) and np.all(origins + pa <= im + pad[:, 1]), "a window outside the padded image"
    assert imap.shape == tuple(pa), f"importance_map shape {imap.shape}"
    assert np.all(np.isfinite(imap)) and np.all(imap > 0), "importance map not finite positive"
    # float32 blending over up to thousands of windows per voxel: a relative error of a few 1e-5.
    np.testing.assert_allclose(r["roundtrip"], r["img"], rtol=1e-4, atol=1e-3 * (1 + np.abs(r["img"]).max(initial=0)),
                               err_msg="gather/scatter/finalize")


target("SlidingWindow", _sw_gen, _sw_call, _sw_check)


def _swi_gen(d):
    nd = d(st.integers(1, 3))
    sp = d(st.lists(st.sampled_from([1, 2, 3, 5, 7]), min_size=nd, max_size=nd))
    x = d(arrays(shape=[d(st.integers(1, 2)), d(st.integers(1, 2)), *sp], dtypes=["float32", "float16", "float64",
                                                                                  "bfloat16", "int16", ">f4"],
                 fills=("float",)))
    return {"x": x, "patch_size": d(maybe_bad(st.one_of(
                st.lists(st.sampled_from([1, 2, 3, 4]), min_size=nd, max_size=nd), st.sampled_from([2, 3])), 40)),
            "overlap": d(maybe_bad(st.sampled_from([0.0, 0.5, 0.75]), 40)),
            "batch_size": d(maybe_bad(st.sampled_from([1, 2, 4]), 40)),
            "mode": d(st.sampled_from(["gaussian", "constant"])), "positions": d(st.sampled_from(["nnunet", "monai"])),
            "argmax": d(st.booleans())}


def _swi_call(a):
    return _mf().sliding_window_inference(
        a["x"], lambda p: p * 1, a["patch_size"], overlap=a["overlap"], batch_size=a["batch_size"],
        mode=a["mode"], positions=a["positions"], argmax=a["argmax"])


def _swi_check(r, a):
    x = a["x"]
    assert kind_of(r) == kind_of(x)
    xs = tuple(x.shape)
    if a["argmax"]:
        assert tuple(r.shape) in (xs[:1] + xs[2:], xs[:1] + (1,) + xs[2:]), f"argmax shape {tuple(r.shape)}"
        want = np.argmax(to_np(x).astype(np.float64), axis=1)
        got = to_np(r).reshape(want.shape)
        xv = np.sort(to_np(x).astype(np.float64), axis=1)
        clear = (xv[:, -1] - xv[:, -2] > 1e-2 * (1 + np.abs(xv[:, -1]))) if xs[1] > 1 else np.ones(want.shape, bool)
        np.testing.assert_array_equal(got[clear], want[clear], err_msg="argmax of an identity prediction")
    else:
        assert tuple(r.shape) == xs, f"shape {tuple(r.shape)} for input {xs}"
        np.testing.assert_allclose(to_np(r).astype(np.float64), to_np(x).astype(np.float64), rtol=2e-2, atol=1e-2,
                                   err_msg="an identity predictor must reproduce the input")


target("sliding_window_inference", _swi_gen, _swi_call, _swi_check, exact=False)


# losses
LOSSES = ["DiceFocalLoss", "DiceLoss", "FocalLoss", "CrossEntropyLoss", "GeneralizedDiceLoss", "BoundaryLoss",
          "ExpLogLoss"]


def _loss_gen(d):
    nd = d(st.integers(1, 3))
    b, k = d(st.integers(1, 2)), d(st.integers(1, 4))
    sp = d(st.lists(st.sampled_from([1, 2, 3, 5]), min_size=nd, max_size=nd))
    logits = d(arrays(shape=[b, k, *sp], kinds=("torch",), dtypes=["float32", "float32", "float16", "bfloat16",
                                                                    "float64", "int64"], fills=("float",)))
    target_shape = d(st.sampled_from([[b, *sp], [b, 1, *sp], [b, *sp], [b + 1, *sp]]))
    tgt = d(arrays(shape=target_shape, kinds=("torch",), dtypes=["int64", "int64", "uint8", "int32", "float32"],
                   fills=("labels",), k=k))
    return {"name": d(st.sampled_from(LOSSES)), "logits": logits, "target": tgt,
            "options": d(st.sampled_from([{}, {"include_background": False}, {"softmax": False}, {"batch": True},
                                          {"ignore_index": 0}, {"gamma": -1.0}, {"smooth_nr": float("nan")}]))}


def _loss_call(a):
    import medseg_fast.losses as L

    torch = _torch()
    cls = getattr(L, a["name"])
    import inspect

    params = inspect.signature(cls).parameters
    opts = {k: v for k, v in a["options"].items() if k in params}
    loss = cls(**opts)
    logits = a["logits"].detach()   # same storage and strides: the layout under test
    if logits.is_floating_point():
        logits.requires_grad_()
    value = loss(logits, a["target"])
    grad = None
    if value.requires_grad:
        (g,) = torch.autograd.grad(value.float().sum(), logits)
        grad = g
    return {"value": value.detach(), "grad": grad}


def _loss_check(r, a):
    v = r["value"]
    assert v.ndim == 0, f"loss shape {tuple(v.shape)}"
    assert bool(_torch().isfinite(v.float())) or not a["options"] == {}, f"loss not finite: {v}"
    if r["grad"] is not None:
        assert tuple(r["grad"].shape) == tuple(a["logits"].shape)


target("losses", _loss_gen, _loss_call, _loss_check, exact=False)


def _threads_call(a):
    mf = _mf()
    before = mf.get_num_threads()
    try:
        mf.set_num_threads(np.int64(2) if a["n"] == "np.int64(2)" else a["n"])
        got = mf.get_num_threads()
        assert isinstance(got, int) and got >= 1, f"get_num_threads gave {got!r}"
        return got
    finally:
        mf.set_num_threads(before)


target("set_num_threads",
       lambda d: {"n": d(st.sampled_from([1, 2, 3, 0, -1, 1.5, "2", None, "np.int64(2)", True, 2**31, 2**63, 64]))},
       _threads_call, layout_invariance=False)


# ----------------------------------------------------------------------------- known bugs
# Inputs of bugs that are reported and being fixed (issue 15); the generators skip them so the
# rest of each target keeps being checked, and tests/test_fuzz.py runs each reproducer as a strict
# xfail. Remove an entry (and its xfail) once its fix is merged.
def _arr(args, key="x"):
    v = args.get(key)
    return v["__array__"] if isinstance(v, dict) and "__array__" in v else None


KNOWN_BUGS: dict[str, dict] = {}


def known_bug(case: dict) -> str | None:
    """The KNOWN_BUGS key that `case` would trip, or None."""
    for key, bug in KNOWN_BUGS.items():
        if bug["target"] in (case["target"], "*") and bug["match"](case["args"]):
            return key
    return None


# ----------------------------------------------------------------------------- running
MESSAGES: collections.Counter = collections.Counter()   # rejection messages, for tuning the generators


def materialize(args: dict) -> dict:
    return {k: build(v["__array__"]) if isinstance(v, dict) and "__array__" in v else v for k, v in args.items()}


def arrays_of(built: dict) -> dict:
    return {k: v for k, v in built.items() if isinstance(v, np.ndarray) or type(v).__module__.startswith("torch")}


# Words besides the argument names that an error message may name its subject by.
ALIASES = {
    "window_bounds": ("window",), "hu_window": ("window", "out"), "multi_window": ("window", "width", "center"),
    "sliding_window_inference": ("predictor",), "losses": ("input", "logits", "target", "weight", "gamma", "smooth",
                                                           "alpha", "classes", "channels", "ignore_index"),
    "SlidingWindow": ("image", "patch"), "set_num_threads": ("n",), "label": ("x",), "evaluate": ("pred", "gt"),
}


def check_message(t: Target, args: dict, status: str, msg: str) -> None:
    """A rejection names what it rejects: an argument name (or an alias) appears in the message."""
    names = {k for k in args if not k.startswith("_")} | set(ALIASES.get(t.name, ())) | {"x", "mask", "labels"}
    if t.name in ("dice", "iou", "pixel_accuracy", "confusion_matrix", "mean_iou", "hausdorff",
                  "average_surface_distance", "surface_dice"):
        names |= {"pred", "gt"}
    if t.name in ("label", "largest_component", "remove_small_components", "fill_holes", "keep_largest_per_class",
                  "component_stats", "distance_transform", "signed_distance"):
        names |= {"labelmap", "mask", "x", "labels"}
    low = msg.lower()
    assert any(n.lower() in low for n in names), f"{status} message names no argument ({sorted(names)}): {msg!r}"


def invoke(t: Target, built: dict) -> tuple[str, Any]:
    try:
        return "ok", t.call(built)
    except (ValueError, TypeError) as exc:
        if not str(exc).strip():
            raise AssertionError(f"{type(exc).__name__} with an empty message") from exc
        return type(exc).__name__, str(exc)


def equal(a: Any, b: Any, exact: bool, path: str = "result") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys {list(a)} vs {list(b) if isinstance(b, dict) else b}"
        for k in a:
            equal(a[k], b[k], exact, f"{path}[{k!r}]")
        return
    if isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{path}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            equal(x, y, exact, f"{path}[{i}]")
        return
    if a is None or isinstance(a, str):
        assert a == b, f"{path}: {a!r} vs {b!r}"
        return
    assert kind_of(a) == kind_of(b), f"{path}: {type(a)} vs {type(b)}"
    x, y = to_np(a) if hasattr(a, "shape") else np.asarray(a), to_np(b) if hasattr(b, "shape") else np.asarray(b)
    assert x.shape == y.shape and x.dtype == y.dtype, f"{path}: {x.shape} {x.dtype} vs {y.shape} {y.dtype}"
    if exact or x.dtype.kind not in "fc":
        ok = np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
        assert ok, f"{path}: differs ({np.argwhere(x != y)[:3].tolist() if x.shape else (x, y)})"
    else:
        tol = 1e-5 if x.dtype.itemsize >= 4 else 1e-2
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol, equal_nan=True, err_msg=path)


def run_case(case: dict, threads: int = 3) -> str:
    """Run one case and assert the contract (see the module docstring); returns the outcome
    ("ok" or the exception type name)."""
    import medseg_fast as mf

    t = TARGETS[case["target"]]
    built = materialize(case["args"])
    inputs = arrays_of(built)
    before = {k: snapshot(v) for k, v in inputs.items()}
    mf.set_num_threads(threads)
    status, result = invoke(t, built)
    if status != "ok":
        MESSAGES[f"{status}: {str(result)[:90]}"] += 1
        check_message(t, case["args"], status, str(result))
    for k, v in inputs.items():
        assert snapshot(v) == before[k], f"input {k} was modified"
    specs = {k: v["__array__"] for k, v in case["args"].items() if isinstance(v, dict) and "__array__" in v}
    if any(is_complex(s["dtype"]) for s in specs.values()):
        # Complex must be refused as a dtype (TypeError) whenever the same call on real data of
        # the same size is accepted; otherwise either error may come first.
        real_args = {k: ({"__array__": {**v["__array__"], "dtype": v["__array__"]["dtype"].replace("complex", "float")
                                        .replace("float128", "float64")}}
                         if isinstance(v, dict) and "__array__" in v else v) for k, v in case["args"].items()}
        status_r, _ = invoke(t, materialize(real_args))
        assert status != "ok", "complex input accepted"
        if status_r == "ok":
            assert status == "TypeError", f"complex input gave {status}: {str(result)[:200]}"
        return status
    if status == "ok" and t.check is not None:
        t.check(result, built)
    if not t.layout_invariance:
        return status
    plain = dict(built)
    plain.update({k: canonical(v) for k, v in inputs.items()})
    status_c, result_c = invoke(t, dict(plain))
    assert status == status_c, (
        f"layout dependence: {status} on the given layout, {status_c} on a C-contiguous copy "
        f"({str(result)[:200] if status != 'ok' else ''}{str(result_c)[:200] if status_c != 'ok' else ''})")
    if status == "ok":
        equal(result, result_c, t.exact, "result (given layout vs C-contiguous copy)")
        mf.set_num_threads(1)
        try:
            status_1, result_1 = invoke(t, dict(plain))
        finally:
            mf.set_num_threads(threads)
        assert status_1 == "ok", f"fails with 1 thread: {result_1}"
        equal(result_c, result_1, True, "result (3 threads vs 1 thread)")
    return status


def case_json(case: dict) -> str:
    return json.dumps(case, default=lambda o: o.item() if isinstance(o, np.generic) else repr(o), allow_nan=True)
