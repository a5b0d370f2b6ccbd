// CPU drivers of the fused segmentation losses (declarations shared with the bindings).
#pragma once

#include <cstdint>

#include "medseg/losses.h"

namespace medseg::cpu {

// Forward pass: sums[b][k][kNumSums] (double) and counts[b] = voxels that count (not ignored,
// label in range). Returns the number of labels outside [0, K) that are not ignore_index (those
// voxels are skipped). Blocks of a fixed voxel count are reduced in a fixed order, so results do
// not depend on the thread count.
int64_t seg_loss_sums(const SegShape& shape, const SegLossConfig& cfg, const SegArray& logits,
                      const SegArray& target, double* sums, int64_t* counts);

// Backward pass: grad (logits' dtype and shape) = d loss / d logits, given
// grad_sums[b][k][kNumSums] = d loss / d sums. Reads the logits and the target once.
void seg_loss_grad(const SegShape& shape, const SegLossConfig& cfg, const SegArray& logits, const SegArray& target,
                   const double* grad_sums, const SegArray& grad);

}  // namespace medseg::cpu
