"""The cache of large fresh host outputs (medseg_fast._host_cache, issue 16 item 8).

What must hold: a block is handed out again only when nothing refers to it (an output, a view of
it, a torch tensor over it), results equal those without the cache, the cache never holds more
than its limit, and concurrent callers never share a block.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import medseg_fast as mf
from medseg_fast import _host_cache as H

SHAPE = (40, 512, 512)   # 40 MiB as float32: above MIN_BYTES


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    H.clear()
    monkeypatch.setattr(H, "_limit", 256 << 20)
    yield
    H.clear()


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_a_free_block_is_reused_and_a_live_one_is_not():
    a = H.empty(SHAPE, np.float32)
    b = H.empty(SHAPE, np.float32)
    assert _address(a) != _address(b)
    where = _address(a)
    del a
    c = H.empty(SHAPE, np.float32)
    assert _address(c) == where
    assert _address(c) != _address(b)


@pytest.mark.parametrize("keep", ["view", "torch", "ravel", "memoryview"])
def test_anything_referring_to_an_output_keeps_its_block(keep):
    a = H.empty(SHAPE, np.float32)
    where = _address(a)
    if keep == "view":
        held = a[3:5, ::2]
    elif keep == "torch":
        torch = pytest.importorskip("torch")
        held = torch.from_numpy(a)
    elif keep == "ravel":
        held = a.ravel()
    else:
        held = memoryview(a)
    del a
    b = H.empty(SHAPE, np.float32)
    assert _address(b) != where
    del held, b
    held_bytes, free_bytes = H.cached_bytes()
    assert held_bytes == free_bytes == 2 * 40 * 512 * 512 * 4   # both blocks free again


def test_a_live_output_is_never_overwritten_by_a_later_call():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 500.0, SHAPE).astype(np.int16)
    first = mf.hu_window(x, 40.0, 400.0)
    expected_first = first.copy()
    second = mf.hu_window(x[::-1], -600.0, 1500.0)   # different values, same size
    np.testing.assert_array_equal(first, expected_first)
    assert _address(first) != _address(second)
    del first
    third = mf.hu_window(x, 40.0, 400.0)          # may reuse the first block: must be rewritten in full
    np.testing.assert_array_equal(third, expected_first)


def test_results_equal_the_uncached_ones(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 500.0, SHAPE).astype(np.float32)
    cached = [mf.hu_window(x, 40.0, 400.0), mf.ct_normalize(x), mf.multi_window(x[:8], ["lung", "bone"])]
    monkeypatch.setattr(H, "_limit", 0)
    plain = [mf.hu_window(x, 40.0, 400.0), mf.ct_normalize(x), mf.multi_window(x[:8], ["lung", "bone"])]
    for a, b in zip(cached, plain):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_torch_outputs_come_from_the_cache_and_stay_tensors():
    torch = pytest.importorskip("torch")
    x = torch.zeros(SHAPE, dtype=torch.int16)
    y = mf.hu_window(x, 40.0, 400.0)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == x.shape
    held, _ = H.cached_bytes()
    assert held >= y.numel() * 4
    where = y.data_ptr()
    del y
    z = mf.hu_window(x, 40.0, 400.0)
    assert z.data_ptr() == where
    assert float(z.max()) == float(z.min())   # every element written


def test_the_cache_never_holds_more_than_its_limit(monkeypatch):
    monkeypatch.setattr(H, "_limit", 100 << 20)
    live = [H.empty(SHAPE, np.float32) for _ in range(5)]   # 5 x 40 MiB live: only 2 fit
    held, free = H.cached_bytes()
    assert held <= 100 << 20 and free == 0
    assert len({_address(a) for a in live}) == 5
    del live
    held, free = H.cached_bytes()
    assert held == free <= 100 << 20
    assert H.clear() == held
    assert H.cached_bytes() == (0, 0)


def test_small_outputs_and_a_zero_limit_bypass_the_cache(monkeypatch):
    small = H.empty((4, 5), np.float64)
    assert small.base is None and H.cached_bytes() == (0, 0)
    monkeypatch.setattr(H, "_limit", 0)
    big = H.empty(SHAPE, np.float32)
    assert big.base is None and H.cached_bytes() == (0, 0)


def test_concurrent_callers_never_share_a_block():
    addresses, errors = [], []
    lock = threading.Lock()

    def work():
        try:
            mine = [H.empty((10, 512, 512 * 2), np.float32) for _ in range(2)]   # 2 x 40 MiB
            with lock:
                addresses.extend(_address(a) for a in mine)
            for a in mine:
                a[...] = threading.get_ident() % 1000
            for a in mine:
                assert np.all(a == threading.get_ident() % 1000)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(addresses) == 12


def test_bad_environment_value_names_it(monkeypatch):
    monkeypatch.setattr(H, "_limit", None)
    monkeypatch.setenv("MEDSEG_HOST_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="MEDSEG_HOST_CACHE_MB"):
        H.empty(SHAPE, np.float32)
    monkeypatch.setenv("MEDSEG_HOST_CACHE_MB", "0")
    assert H.empty(SHAPE, np.float32).base is None
