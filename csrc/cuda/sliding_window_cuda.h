// CUDA drivers of sliding-window inference: the same signatures as the CPU drivers plus a stream.
// Grid origin lists and the importance map must be device memory. Plain C++ declarations.
#pragma once

#include <cstdint>

#include "medseg/array_arg.h"
#include "medseg/sliding_window.h"

namespace medseg::cuda {

void sw_gather(const SwGrid& grid, const ArrayArg& x, int64_t batch, int64_t channels, const ArrayArg& out,
               int64_t first, int64_t n, uintptr_t stream);

void sw_scatter_add(const SwGrid& grid, const float* imp, const ArrayArg& patches, const ArrayArg& acc,
                    const SwRegion& region, const ArrayArg& weights, int64_t first, int64_t n, uintptr_t stream);

void sw_finalize(const SwGrid& grid, const float* imp, const ArrayArg& acc, const SwRegion& region,
                 const ArrayArg& weights, const ArrayArg& out, bool argmax, uintptr_t stream);

}  // namespace medseg::cuda
