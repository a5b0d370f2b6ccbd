// CPU drivers of sliding-window inference (declarations shared with the bindings).
//
// Arrays are 5-D views (batch/window, channel, z, y, x) with element strides in ArrayArg::strides.
// `first` is a flattened window index over batch * grid.windows() windows; n windows are handled.
#pragma once

#include <cstdint>

#include "medseg/array_arg.h"
#include "medseg/sliding_window.h"

namespace medseg::cpu {

// out[i, c] = x[b, c] cropped at window first + i (zeros outside the image). x: (batch, channels,
// *image); out: (n, channels, *patch) of x's dtype or float32.
void sw_gather(const SwGrid& grid, const ArrayArg& x, int64_t batch, int64_t channels, const ArrayArg& out,
               int64_t first, int64_t n);

// acc[b, k, v] += patches[i, k, v - o] * imp[v - o] (and weights[b, v] += imp[v - o] when weights
// is present) for window first + i, over the voxels inside `region`. Windows are added in order,
// so each voxel receives its contributions in window order whatever the thread count.
// `labels` (optional; needs region.divide_last): integer (batch, 1, *image) labels in image
// coordinates; the argmax over channels of each voxel is written there by its last window, right
// after its probabilities, so streaming argmax needs no finalize pass.
// `block` > 0: every (b, k, z) plane of the accumulator (contiguous, region.shape[1] x
// region.shape[2]) is stored in column blocks: block xb (columns [xb * block, ...), width
// bw = min(block, nx - xb * block)) starts at xb * block * ny and holds its rows one after the other,
// so element (y, x) lives at xb * block * ny + y * bw + x % block. A window then reads its part of
// each plane as a few sequential streams (one per block) instead of ny short rows half a row
// apart, which the hardware prefetchers follow: about 2x faster on a 128^3 window of a 256^3
// image. sw_unblock turns the planes back into row-major order.
void sw_scatter_add(const SwGrid& grid, const SwImportance& imp, const ArrayArg& patches, const ArrayArg& acc,
                    const SwRegion& region, const ArrayArg& weights, int64_t first, int64_t n,
                    const ArrayArg& labels = ArrayArg{}, int64_t block = 0);

// Rewrites `planes` contiguous ny x nx float32 planes starting at acc from the blocked layout of
// sw_scatter_add into row-major order, in place (a per-thread copy of one plane at a time).
void sw_unblock(const ArrayArg& acc, int64_t planes, int64_t ny, int64_t nx, int64_t block);

// out = acc / W over `region` (W from `weights` when present, else the grid's weight sum), or with
// argmax the index of the largest normalized channel. out: (batch, channels, *region) float or
// (batch, 1, *region) integer labels; it may be acc itself (in place). With region.divide_last the
// accumulator already holds probabilities (in-order scatter divided them) and W is taken as 1.
void sw_finalize(const SwGrid& grid, const SwImportance& imp, const ArrayArg& acc, const SwRegion& region,
                 const ArrayArg& weights, const ArrayArg& out, bool argmax);

}  // namespace medseg::cpu
