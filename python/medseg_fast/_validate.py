"""Argument validation shared by the kernel facades (intensity, components, metrics, resampling,
distance): one rule per kind of argument, messages that name the argument, the expected and the
value received.

Spacing rule (every function that takes ``spacing``): None means 1 along every axis; a single
positive number means isotropic spacing, as ``scipy.ndimage``'s ``sampling`` and MONAI's
``pixdim`` accept; otherwise one positive finite value per axis, in array axis order. Booleans are
refused (``True`` is no voxel size). Where squared distances or voxel volumes are summed in
float64 the values must also lie in :data:`SPACING_RANGE`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = ["SPACING_RANGE", "is_number", "spacing", "flag", "choice", "integer", "classes", "percentile",
           "pad3"]

# Spacing values whose squares (distances) and products (voxel volumes) stay finite and nonzero in
# float64: 1e200 overflowed to inf (and 0 * inf = NaN at zero distance), 1e-200 underflowed to 0.
SPACING_RANGE = (1e-100, 1e100)


def is_number(value: Any) -> bool:
    """A real scalar (Python or numpy), not a bool."""
    return isinstance(value, (Real, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def spacing(value: Any, ndim: int, name: str = "spacing", what: str = "array", *,
            limits: tuple[float, float] | None = SPACING_RANGE) -> tuple[float, ...]:
    """Per-axis spacing of an ``ndim``-D ``what``: None -> ones, a number -> isotropic (module rule)."""
    if value is None:
        return (1.0,) * ndim
    if is_number(value):
        values: tuple[float, ...] = (float(value),) * ndim
        shown: Any = value
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise ValueError(
                f"{name} must be a positive number or {ndim} positive values, got {value!r}") from None
        shown = items
        if not all(is_number(v) for v in items):
            raise ValueError(f"{name} must be a positive number or {ndim} positive values, got {value!r}")
        values = tuple(float(v) for v in items)
    if len(values) != ndim or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name} must have {ndim} positive values for a {ndim}-D {what}, got {shown!r}")
    if limits is not None and not all(limits[0] <= v <= limits[1] for v in values):
        raise ValueError(f"{name} values must lie in [{limits[0]:g}, {limits[1]:g}] so squared distances and "
                         f"voxel volumes stay finite and nonzero in float64, got {values!r}")
    return values


def flag(value: Any, name: str) -> bool:
    """A bool argument: True/False (or numpy bools) only, so a stray string or number is not read as truthy."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """One of ``choices`` (compared by equality; the types must match, so 1 is not True)."""
    for c in choices:
        if type(value) is type(c) and value == c:
            return c
        if isinstance(c, str) and isinstance(value, str) and value == c:   # str subclasses (numpy.str_)
            return c
    raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def integer(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None,
            error: type[Exception] = ValueError) -> int:
    """An integral value (Python or numpy int, not a bool or a float such as 2.0) in [minimum, maximum]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Integral, np.integer)):
        expected = "an integer" if minimum is None and maximum is None else _range_text(minimum, maximum)
        raise error(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ValueError(f"{name} must be {_range_text(minimum, maximum)}, got {value!r}")
    return v


def _range_text(minimum: int | None, maximum: int | None) -> str:
    if maximum is None:
        return "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if minimum is None:
        return f"an integer <= {maximum}"
    return f"an integer in {minimum}..{maximum}"


def classes(value: Any, name: str = "classes", *, allow_negative: bool = False) -> list[int]:
    """Distinct (non-negative) integer labels; floats (1.5, also 2.0), bools and strings are refused."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of integer labels, got {value!r}")
    items = list(value) if isinstance(value, Iterable) else [value]
    values = []
    for c in items:
        if isinstance(c, (bool, np.bool_)):
            raise TypeError(f"{name} must hold integer labels, got {type(c).__name__} {c!r} in {value!r}")
        try:
            values.append(operator.index(c))
        except TypeError:
            raise TypeError(
                f"{name} must hold integer labels, got {type(c).__name__} {c!r} in {value!r}") from None
    negative = [v for v in values if v < 0]
    if negative and not allow_negative:
        raise ValueError(f"{name} must be non-negative label values, got {negative[0]} in {value!r}")
    wide = [v for v in values if not -(2**63) <= v < 2**63]
    if wide:
        raise ValueError(f"{name} must be label values that fit int64, got {wide[0]} in {value!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a label, got {value!r}")
    return values


def percentile(value: Any, name: str = "percentile", *, allow_none: bool = True) -> float:
    """A percentile in [0, 100]; None (where allowed) gives -1.0, the kernels' "maximum"."""
    expected = f"{'None or ' if allow_none else ''}a number in [0, 100]"
    if value is None and allow_none:
        return -1.0
    if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {expected}, got {value!r}") from None
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return p


def pad3(values: Sequence[Any], fill: Any) -> list[Any]:
    """``values`` (at most 3) padded in front with ``fill`` to the kernels' 3 axes.

    Lower-dimensional inputs become (1, n) / (1, 1, n) volumes: shape pads with 1, strides with 0,
    spacing with 1.0.
    """
    values = list(values)
    if len(values) > 3:
        raise ValueError(f"at most 3 axes are supported, got {len(values)} values")
    return [fill] * (3 - len(values)) + values
