// CUDA drivers of the fused segmentation losses. Plain C++ declarations: included by the
// nvcc-compiled drivers and by the host-compiled bindings.
#pragma once

#include <cstdint>

#include "medseg/losses.h"

namespace medseg::cuda {

// Device pointers: sums (B*K*5 float64), counts (B int64) and bad (1 int64, incremented by the
// number of out-of-range labels). Asynchronous on `stream`; deterministic (fixed-order reductions).
void seg_loss_sums(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
                   uintptr_t sums, uintptr_t counts, uintptr_t bad, uintptr_t stream);

// grad_sums: device pointer to B*K*5 float64 (d loss / d sums); grad written in the logits' dtype.
void seg_loss_grad(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
                   uintptr_t grad_sums, const ArrayArg& grad, uintptr_t stream);

}  // namespace medseg::cuda
