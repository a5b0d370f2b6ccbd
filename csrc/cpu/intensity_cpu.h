// CPU drivers of the intensity family (declarations shared with the bindings).
#pragma once

#include <vector>

#include "medseg/array_arg.h"
#include "medseg/intensity.h"

namespace medseg::cpu {

// out[w, ...] = window w applied to `in`; `out_window_stride` separates the windows.
// With a mask, voxels outside it get `outside_value` (mask must be uint8/bool storage).
void window_apply(const Layout& layout, const ArrayArg& in, const ArrayArg& out, int64_t out_window_stride,
                  const std::vector<WindowParams>& windows, const ArrayArg& mask, double outside_value);

// 0 forces the portable window loop, 1 uses the AVX2 loop where available (bit-identical; the tests
// compare both), anything else only queries; returns 1 when the AVX2 loop is in use.
int window_simd_mode(int mode);

// Histogram of a <= 16-bit integer input (bins indexed by SortKey), optionally masked.
std::vector<uint64_t> histogram16(const Layout& layout, const ArrayArg& in, const ArrayArg& mask);

// Count / NaN count / mean / M2 / min / max of clamp(x, lo, hi) over the selected voxels.
Moments moments(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, double clamp_lo, double clamp_hi);

// Exact order statistics: out_values[i] = the ranks[i]-th smallest selected non-NaN value
// (0-based), written in the input's own dtype. Radix selection, 16 key bits per pass.
void order_statistics(const Layout& layout, const ArrayArg& in, const ArrayArg& mask,
                      const std::vector<int64_t>& ranks, uintptr_t out_values);

}  // namespace medseg::cpu
