# Typed stubs of the CPU extension. Arrays travel as (address, dtype name, element strides)
# descriptors built by medseg_fast._backend; argument checks live in the Python API.
from collections.abc import Sequence

import numpy as np

ArrayDesc = tuple[int, str, Sequence[int]]
WindowParams = tuple[float, float, float, float, float]

compiler: str
cxx_standard: int

def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def window_apply(shape: Sequence[int], x: ArrayDesc, out: ArrayDesc, out_window_stride: int,
                 windows: Sequence[WindowParams], mask: ArrayDesc, outside_value: float) -> None: ...
def histogram16(shape: Sequence[int], x: ArrayDesc, mask: ArrayDesc) -> np.ndarray: ...
def moments(shape: Sequence[int], x: ArrayDesc, mask: ArrayDesc, clamp_lo: float,
            clamp_hi: float) -> tuple[int, int, float, float, float, float]: ...
def order_statistics(shape: Sequence[int], x: ArrayDesc, mask: ArrayDesc, ranks: Sequence[int],
                     out_values: int) -> None: ...
