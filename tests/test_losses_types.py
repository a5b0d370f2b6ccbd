"""The typed boundary of the loss kernels: bound enums and the SegLossConfig struct, used by name."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medseg_fast import _ext  # noqa: E402
from medseg_fast.losses import DiceFocalLoss  # noqa: E402
from medseg_fast.losses import _fused  # noqa: E402

C = _ext.cpu_module()
MODULES = [pytest.param(C, id="cpu"),
           pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not _ext.cuda_built(),
                                                                   reason="medseg_fast built without CUDA"))]


def _module(which):
    return _ext.cuda_module() if which == "cuda" else which


def _seed(request) -> int:
    return zlib.crc32(request.node.nodeid.encode())


def _cpu_call(config, logits, labels):
    """seg_loss_sums of the CPU module on contiguous (B, K, n0, n1, n2) logits and (B, 1, ...) labels."""
    B, K = logits.shape[:2]
    sums = torch.zeros((B, K, 5), dtype=torch.float64)
    counts = torch.zeros((B,), dtype=torch.int64)
    ls, ts = logits.stride(), labels.stride()
    return C.seg_loss_sums(list(logits.shape), config,
                           (logits.data_ptr(), "float32", list(ls)),
                           (labels.data_ptr(), "int64", [ts[0], 0, *ts[2:]]),
                           sums.data_ptr(), counts.data_ptr()), sums


@pytest.mark.parametrize("which", MODULES)
def test_config_fields_by_name(which):
    mod = _module(which)
    cfg = mod.SegLossConfig(act=mod.DiceAct.sigmoid, term=mod.PixelTerm.focal_softmax, term_first=1, gamma=1.5,
                            squared_pred=True, onehot=True, ignore_index=3, explog_eps=1e-5)
    assert cfg.act == mod.DiceAct.sigmoid
    assert cfg.term == mod.PixelTerm.focal_softmax
    assert (cfg.term_first, cfg.gamma, cfg.squared_pred, cfg.onehot, cfg.ignore_index, cfg.explog_eps) == \
        (1, 1.5, True, True, 3, 1e-5)
    cfg.ignore_index = None
    assert cfg.ignore_index is None
    cfg.term = mod.PixelTerm.explog_softmax
    assert cfg.term == mod.PixelTerm.explog_softmax
    default = mod.SegLossConfig()
    assert (default.act, default.term, default.ignore_index, default.gamma) == \
        (mod.DiceAct.softmax, mod.PixelTerm.none, None, 2.0)
    assert repr(mod.SegLossConfig(act=mod.DiceAct.sigmoid, ignore_index=255)) == (
        "SegLossConfig(act=sigmoid, term=none, term_first=0, gamma=2.0, squared_pred=False, onehot=False, "
        "ignore_index=255, explog_eps=1e-07)")


@pytest.mark.parametrize("which", MODULES)
def test_config_rejects_bad_names_types_and_positions(which):
    mod = _module(which)
    with pytest.raises(TypeError):
        mod.SegLossConfig(activation=mod.DiceAct.softmax)        # no such field
    with pytest.raises(TypeError):
        mod.SegLossConfig(mod.DiceAct.softmax)                   # keywords only
    with pytest.raises(TypeError):
        mod.SegLossConfig(act=0)                                 # a bare int is not a DiceAct
    with pytest.raises(TypeError):
        mod.SegLossConfig(act=mod.PixelTerm.none)                # nor is another enum
    with pytest.raises(TypeError):
        mod.SegLossConfig(term_first="1")
    cfg = mod.SegLossConfig()
    with pytest.raises(TypeError):
        cfg.act = 1
    with pytest.raises(AttributeError):
        mod.DiceAct.tanh                                         # noqa: B018


def test_enum_value_outside_the_enum_is_a_value_error():
    # pybind11 enums can be made from any int; the kernel entry refuses values it has no code for.
    logits = torch.zeros((1, 2, 1, 2, 3))
    labels = torch.zeros((1, 1, 1, 2, 3), dtype=torch.int64)
    with pytest.raises(ValueError, match="config.act must be a DiceAct, got the value 7"):
        _cpu_call(C.SegLossConfig(act=C.DiceAct(7)), logits, labels)
    with pytest.raises(ValueError, match="config.term must be a PixelTerm, got the value 9"):
        _cpu_call(C.SegLossConfig(term=C.PixelTerm(9)), logits, labels)
    with pytest.raises(ValueError, match=r"loss shape must be \(B, K, n0, n1, n2\), got 4 values"):
        C.seg_loss_sums([1, 2, 2, 3], C.SegLossConfig(), (0, "float32", [0] * 4), (0, "int64", [0] * 4), 0, 0)


def test_old_positional_tuple_config_is_refused():
    logits = torch.zeros((1, 2, 1, 2, 3))
    labels = torch.zeros((1, 1, 1, 2, 3), dtype=torch.int64)
    with pytest.raises(TypeError):
        _cpu_call((0, 0, 0, 2.0, False, False, False, 0, 1e-7), logits, labels)


def test_typed_call_matches_the_loss_module(request):
    gen = torch.Generator().manual_seed(_seed(request))
    logits = torch.randn((2, 3, 4, 5, 6), generator=gen)
    labels = torch.randint(0, 3, (2, 1, 4, 5, 6), generator=gen)
    n_bad, sums = _cpu_call(C.SegLossConfig(term=C.PixelTerm.focal_softmax, gamma=2.0), logits, labels)
    assert n_bad == 0
    config = _fused.SegConfig(act="softmax", term="focal_softmax", gamma=2.0)
    fused, counts, _ = _fused.seg_sums(logits, labels, False, config)
    assert torch.equal(fused, sums)
    assert counts.tolist() == [120, 120]


def test_seg_config_names_are_checked():
    with pytest.raises(ValueError, match=r"act must be one of \('softmax', 'sigmoid'\), got 'softmaxx'"):
        _fused.SegConfig(act="softmaxx").for_kernel(C, False)
    with pytest.raises(ValueError, match=r"term must be one of \('none', 'focal_softmax', .*got 1"):
        _fused.SegConfig(term=1).for_kernel(C, False)
    cfg = _fused.SegConfig(act="sigmoid", term="focal_sigmoid", ignore_index=4).for_kernel(C, True)
    assert (cfg.act, cfg.term, cfg.ignore_index, cfg.onehot) == (C.DiceAct.sigmoid, C.PixelTerm.focal_sigmoid, 4, True)


def test_sum_indices_come_from_the_kernels():
    assert [_fused.SUM_I, _fused.SUM_P, _fused.SUM_G, _fused.SUM_TP, _fused.SUM_TN] == \
        [int(C.SegSum.__members__[n]) for n in ("I", "P", "G", "Tp", "Tn")] == [0, 1, 2, 3, 4]


def test_losses_still_run_with_named_config(request):
    rng = np.random.default_rng(_seed(request))
    x = torch.from_numpy(rng.normal(size=(1, 3, 4, 5))).float().requires_grad_(True)
    y = torch.from_numpy(rng.integers(0, 3, size=(1, 1, 4, 5)))
    loss = DiceFocalLoss(focal_activation="sigmoid")(x, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.skipif(not _ext.cuda_built(), reason="medseg_fast built without CUDA")
def test_cpu_and_cuda_modules_expose_the_same_types():
    G = _ext.cuda_module()
    for name in ("DiceAct", "PixelTerm", "SegSum"):
        assert {k: int(v) for k, v in getattr(C, name).__members__.items()} == \
            {k: int(v) for k, v in getattr(G, name).__members__.items()}
    fields = {n for n in dir(C.SegLossConfig) if not n.startswith("_")}
    assert fields == {n for n in dir(G.SegLossConfig) if not n.startswith("_")}
    # Module-local types of the same C++ type: pybind11 loads the other module's instances too.
    logits = torch.zeros((1, 2, 1, 2, 3))
    labels = torch.zeros((1, 1, 1, 2, 3), dtype=torch.int64)
    n_bad, sums = _cpu_call(G.SegLossConfig(act=G.DiceAct.sigmoid), logits, labels)
    assert n_bad == 0
    assert torch.equal(sums, _cpu_call(C.SegLossConfig(act=C.DiceAct.sigmoid), logits, labels)[1])
