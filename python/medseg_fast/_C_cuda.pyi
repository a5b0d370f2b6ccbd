# Kept by hand by the rule in tests/test_stubs.py (shared types copied from _C.pyi by
# `python tests/test_stubs.py --write`; functions checked against the py::arg lists of csrc/bindings/*_cuda.cpp).
"""
medseg_fast CUDA kernels
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
ArrayDesc = tuple[int, str, collections.abc.Sequence[int]]
__all__: list[str] = ['DiceAct', 'PixelTerm', 'ResampleSpec', 'SegLossConfig', 'SegSum', 'SwGrid', 'SwImportance', 'SwRegion', 'Window', 'architectures', 'compiler_version', 'device_count', 'distance_transform', 'histogram16', 'label', 'moments', 'order_statistics', 'resample', 'resample_argmax', 'resample_labels', 'resample_nearest', 'runtime_version', 'seg_loss_grad', 'seg_loss_sums', 'sw_finalize', 'sw_gather', 'sw_scatter_add', 'window_apply']
class Window:
    """
    y = (clamp(x, lo, hi) - center) * scale + offset; keyword arguments only.
    """
    def __init__(self, *, lo: float, hi: float, center: float, scale: float, offset: float) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def center(self) -> float:
        ...
    @property
    def hi(self) -> float:
        ...
    @property
    def lo(self) -> float:
        ...
    @property
    def offset(self) -> float:
        ...
    @property
    def scale(self) -> float:
        ...
class ResampleSpec:
    """
    Frames and per-axis orders of one resample call; keyword arguments only.
    """
    def __init__(self, *, in_shape: typing.Annotated[collections.abc.Sequence[int], "FixedSize(4)"], out_shape: typing.Annotated[collections.abc.Sequence[int], "FixedSize(4)"], orders: typing.Annotated[collections.abc.Sequence[int], "FixedSize(4)"], late_axis: int = -1, clip_axis: int = -1) -> None:
        ...
    @property
    def clip_axis(self) -> int:
        """
        -1: no clipping; 0: to each channel's input range; 1..3: per (channel, slice)
        """
    @property
    def in_shape(self) -> typing.Annotated[list[int], "FixedSize(4)"]:
        """
        (channels, n0, n1, n2)
        """
    @property
    def late_axis(self) -> int:
        """
        1..3: resampled after every other axis (nnU-Net's separate z); -1: none
        """
    @property
    def orders(self) -> typing.Annotated[list[int], "FixedSize(4)"]:
        """
        spline order per axis; [0] unused
        """
    @property
    def out_shape(self) -> typing.Annotated[list[int], "FixedSize(4)"]:
        ...
class SwGrid:
    """
    Window grid of one image: extents (z, y, x) and the addresses of the per-axis int64 origin lists (host memory for _C, device memory for _C_cuda).
    """
    def __init__(self, *, image: typing.Annotated[collections.abc.Sequence[int], "FixedSize(3)"], patch: typing.Annotated[collections.abc.Sequence[int], "FixedSize(3)"], count: typing.Annotated[collections.abc.Sequence[int], "FixedSize(3)"], origins: typing.Annotated[collections.abc.Sequence[int], "FixedSize(3)"]) -> None:
        ...
    @property
    def count(self) -> typing.Annotated[list[int], "FixedSize(3)"]:
        ...
    @property
    def image(self) -> typing.Annotated[list[int], "FixedSize(3)"]:
        ...
    @property
    def origins(self) -> typing.Annotated[list[int], "FixedSize(3)"]:
        ...
    @property
    def patch(self) -> typing.Annotated[list[int], "FixedSize(3)"]:
        ...
    @property
    def windows(self) -> int:
        ...
class SwRegion:
    """
    Accumulator geometry: batch x channels over the image box [origin, origin + shape), a ring along axes with wrap > 0; assign_first / divide_last are the in-order streaming flags.
    """
    def __init__(self, *, batch: int, channels: int, origin: typing.Annotated[collections.abc.Sequence[int], "FixedSize(3)"], shape: typing.Annotated[collections.abc.Sequence[int], "FixedSize(3)"], wrap: typing.Annotated[collections.abc.Sequence[int], "FixedSize(3)"] = [0, 0, 0], assign_first: bool = False, divide_last: bool = False) -> None:
        ...
    @property
    def assign_first(self) -> bool:
        ...
    @property
    def batch(self) -> int:
        ...
    @property
    def channels(self) -> int:
        ...
    @property
    def divide_last(self) -> bool:
        ...
    @property
    def origin(self) -> typing.Annotated[list[int], "FixedSize(3)"]:
        ...
    @property
    def shape(self) -> typing.Annotated[list[int], "FixedSize(3)"]:
        ...
    @property
    def wrap(self) -> typing.Annotated[list[int], "FixedSize(3)"]:
        ...
class SwImportance:
    """
    Importance map: address of the contiguous float32 map and, optionally (CPU), of its separable factors scale (pz * py) and row (px) with the floor.
    """
    def __init__(self, *, map: int, scale: int = 0, row: int = 0, floor: float = 0.0) -> None:
        ...
    @property
    def floor(self) -> float:
        ...
    @property
    def map(self) -> int:
        ...
    @property
    def row(self) -> int:
        ...
    @property
    def scale(self) -> int:
        ...
class DiceAct:
    """
    Activation of the Dice probabilities.

    Members:

      softmax : softmax over the classes

      sigmoid : a sigmoid per class
    """
    __members__: typing.ClassVar[dict[str, DiceAct]]
    sigmoid: typing.ClassVar[DiceAct]
    softmax: typing.ClassVar[DiceAct]
    @typing.overload
    def __eq__(self, other: DiceAct) -> bool:
        ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool:
        ...
    def __getstate__(self) -> int:
        ...
    def __hash__(self) -> int:
        ...
    def __index__(self) -> int:
        ...
    def __init__(self, value: int) -> None:
        ...
    def __int__(self) -> int:
        ...
    @typing.overload
    def __ne__(self, other: DiceAct) -> bool:
        ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, state: int) -> None:
        ...
    def __str__(self) -> str:
        ...
    @property
    def name(self) -> str:
        ...
    @property
    def value(self) -> int:
        ...
class PixelTerm:
    """
    Per-element loss term summed into Tp / Tn.

    Members:

      none

      focal_softmax : softmax focal term (cross-entropy at gamma 0)

      focal_sigmoid : sigmoid focal term

      explog_softmax : exponential-logarithmic cross term
    """
    __members__: typing.ClassVar[dict[str, PixelTerm]]
    explog_softmax: typing.ClassVar[PixelTerm]
    focal_sigmoid: typing.ClassVar[PixelTerm]
    focal_softmax: typing.ClassVar[PixelTerm]
    none: typing.ClassVar[PixelTerm]
    @typing.overload
    def __eq__(self, other: PixelTerm) -> bool:
        ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool:
        ...
    def __getstate__(self) -> int:
        ...
    def __hash__(self) -> int:
        ...
    def __index__(self) -> int:
        ...
    def __init__(self, value: int) -> None:
        ...
    def __int__(self) -> int:
        ...
    @typing.overload
    def __ne__(self, other: PixelTerm) -> bool:
        ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, state: int) -> None:
        ...
    def __str__(self) -> str:
        ...
    @property
    def name(self) -> str:
        ...
    @property
    def value(self) -> int:
        ...
class SegSum:
    """
    Index of each per-(batch, class) sum in the last axis.

    Members:

      I : sum p t

      P : sum p (p^2 with squared_pred)

      G : sum t (t^2 with squared_pred)

      Tp : sum t term

      Tn : sum (1 - t) term
    """
    G: typing.ClassVar[SegSum]
    I: typing.ClassVar[SegSum]
    P: typing.ClassVar[SegSum]
    Tn: typing.ClassVar[SegSum]
    Tp: typing.ClassVar[SegSum]
    __members__: typing.ClassVar[dict[str, SegSum]]
    @typing.overload
    def __eq__(self, other: SegSum) -> bool:
        ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool:
        ...
    def __getstate__(self) -> int:
        ...
    def __hash__(self) -> int:
        ...
    def __index__(self) -> int:
        ...
    def __init__(self, value: int) -> None:
        ...
    def __int__(self) -> int:
        ...
    @typing.overload
    def __ne__(self, other: SegSum) -> bool:
        ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, state: int) -> None:
        ...
    def __str__(self) -> str:
        ...
    @property
    def name(self) -> str:
        ...
    @property
    def value(self) -> int:
        ...
class SegLossConfig:
    """
    What the fused loss kernels compute; keyword arguments only.
    """
    act: DiceAct
    squared_pred: bool
    term: PixelTerm
    def __init__(self, *, act: DiceAct = DiceAct.softmax, term: PixelTerm = PixelTerm.none, term_first: int = 0, gamma: float = 2.0, squared_pred: bool = False, onehot: bool = False, ignore_index: int | None = None, explog_eps: float = 1e-07) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def explog_eps(self) -> float:
        ...
    @explog_eps.setter
    def explog_eps(self, arg0: float) -> None:
        ...
    @property
    def gamma(self) -> float:
        """
        focal exponent, or the exp-log cross exponent
        """
    @gamma.setter
    def gamma(self, arg0: float) -> None:
        ...
    @property
    def ignore_index(self) -> int | None:
        """
        label whose voxels are skipped, or None
        """
    @ignore_index.setter
    def ignore_index(self, arg1: int | None) -> None:
        ...
    @property
    def onehot(self) -> bool:
        """
        the target holds K channels instead of labels
        """
    @onehot.setter
    def onehot(self, arg0: bool) -> None:
        ...
    @property
    def term_first(self) -> int:
        """
        softmax terms normalise over classes [term_first, K)
        """
    @term_first.setter
    def term_first(self, arg0: int) -> None:
        ...
def device_count() -> int:
    ...
def distance_transform(shape: collections.abc.Sequence[int], mask: ArrayDesc, out: ArrayDesc, spacing: collections.abc.Sequence[float], squared: bool, virtual_axis: int, stream: int) -> None:
    ...
def histogram16(shape: collections.abc.Sequence[int], x: ArrayDesc, mask: ArrayDesc, stream: int) -> numpy.typing.NDArray[numpy.uint64]:
    ...
def label(shape: collections.abc.Sequence[int], x: ArrayDesc, out: ArrayDesc, connectivity: int, background: int, max_label: int, stream: int) -> int:
    ...
def moments(shape: collections.abc.Sequence[int], x: ArrayDesc, mask: ArrayDesc, clamp_lo: float, clamp_hi: float, stream: int) -> tuple[int, int, float, float, float, float]:
    ...
def order_statistics(shape: collections.abc.Sequence[int], x: ArrayDesc, mask: ArrayDesc, ranks: collections.abc.Sequence[int], out_values: int, stream: int) -> None:
    ...
def resample(spec: ResampleSpec, x: ArrayDesc, out: ArrayDesc, stream: int) -> None:
    ...
def resample_argmax(spec: ResampleSpec, scores: ArrayDesc, out: ArrayDesc, stream: int) -> None:
    ...
def resample_labels(in_shape: typing.Annotated[collections.abc.Sequence[int], "FixedSize(4)"], out_shape: typing.Annotated[collections.abc.Sequence[int], "FixedSize(4)"], orders: typing.Annotated[collections.abc.Sequence[int], "FixedSize(4)"], x: ArrayDesc, out: ArrayDesc, stream: int) -> None:
    ...
def resample_nearest(in_shape: typing.Annotated[collections.abc.Sequence[int], "FixedSize(4)"], out_shape: typing.Annotated[collections.abc.Sequence[int], "FixedSize(4)"], x: ArrayDesc, out: ArrayDesc, stream: int) -> None:
    ...
def runtime_version() -> int:
    ...
def seg_loss_grad(shape: collections.abc.Sequence[int], config: SegLossConfig, logits: ArrayDesc, target: ArrayDesc, grad_sums: int, grad: ArrayDesc, stream: int) -> None:
    ...
def seg_loss_sums(shape: collections.abc.Sequence[int], config: SegLossConfig, logits: ArrayDesc, target: ArrayDesc, sums: int, counts: int, bad: int, stream: int) -> None:
    ...
def sw_finalize(grid: SwGrid, importance: SwImportance, acc: ArrayDesc, region: SwRegion, weights: ArrayDesc, out: ArrayDesc, argmax: bool, stream: int) -> None:
    ...
def sw_gather(grid: SwGrid, x: ArrayDesc, batch: int, channels: int, out: ArrayDesc, first: int, n: int, stream: int) -> None:
    ...
def sw_scatter_add(grid: SwGrid, importance: SwImportance, patches: ArrayDesc, acc: ArrayDesc, region: SwRegion, weights: ArrayDesc, first: int, n: int, stream: int) -> None:
    ...
def window_apply(shape: collections.abc.Sequence[int], x: ArrayDesc, out: ArrayDesc, out_window_stride: int, windows: collections.abc.Sequence[Window], mask: ArrayDesc, outside_value: float, stream: int) -> None:
    ...
architectures: str
compiler_version: str
