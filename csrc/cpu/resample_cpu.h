// CPU drivers of the resampling family (declarations shared with the bindings).
#pragma once

#include <vector>

#include "medseg/array_arg.h"
#include "medseg/resample.h"

namespace medseg::cpu {

// Separable resampling of `in` (spec.in_shape, strides in in.strides[0..3]) into `out`
// (spec.out_shape, float dtype). Axes are processed one at a time in plan_resample_passes order;
// intermediates are float32 (float64 when ResampleCompute says so), per chunk of channels.
void resample(const ResampleSpec& spec, const ArrayArg& in, const ArrayArg& out);

// `resample` on affine per-axis sampling grids (maps; see medseg/resample.h): orders 0, 1 and 3
// (3: edge boundary, every coordinate within the spline padding, else invalid_argument).
void resample_mapped(const ResampleSpec& spec, const AxisMaps& maps, const ArrayArg& in, const ArrayArg& out);

// Nearest-neighbour resampling (order 0 on every axis) that copies elements bit for bit.
void resample_nearest(const int64_t* in_shape, const int64_t* out_shape, const ArrayArg& in, const ArrayArg& out);

// Label maps: per output voxel, the label with the largest summed interpolation weight among its
// (up to 2^3) neighbours (ties: smallest label). orders[a] (0 or 1) per axis a = 1..3, so a
// separate low-resolution axis can take the nearest slice. `out` has the input's integer dtype.
void resample_labels(const int64_t* in_shape, const int64_t* out_shape, const int* orders, const ArrayArg& in,
                     const ArrayArg& out);

// Fused resample + argmax over channels (classes): `out` (spec.out_shape[1..3], uint8, int16 or
// int32) gets, per voxel, the channel whose value cpu::resample(spec, in) would hold largest
// (the value rounded to in's float dtype, as resample stores it); exact ties go to the lowest
// channel, NaN never wins. Computed in output tiles: no (channels, *out) array is allocated.
void resample_argmax(const ResampleSpec& spec, const ArrayArg& in, const ArrayArg& out);

// Clip bounds of spec.clip_axis's groups (per channel, or per channel and slice): the input's
// range, NaNs ignored; a group without values gets (-inf, inf).
void resample_clip_bounds(const ResampleSpec& spec, const ArrayArg& in, std::vector<double>& lo,
                          std::vector<double>& hi);

}  // namespace medseg::cpu
