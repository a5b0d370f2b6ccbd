// CPU drivers of the fused segmentation losses (declarations shared with the bindings).
#pragma once

#include <cstdint>

#include "medseg/losses.h"

namespace medseg::cpu {

// Forward pass: sums[b][k][kNumSums] (double) and counts[b] = voxels that count (not ignored,
// label in range). Returns the number of labels outside [0, K) that are not ignore_index (those
// voxels are skipped). Blocks of a fixed voxel count are reduced in a fixed order, so results do
// not depend on the thread count.
int64_t seg_loss_sums(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits,
                      const ArrayArg& target, double* sums, int64_t* counts);

// Backward pass: grad (logits' dtype and shape) = d loss / d logits, given
// grad_sums[b][k][kNumSums] = d loss / d sums. Reads the logits and the target once.
void seg_loss_grad(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
                   const double* grad_sums, const ArrayArg& grad);

// AVX2 path (losses_avx2.cpp) of the two drivers above, used by them first: false (nothing
// done) where the configuration (float64 logits, one-hot targets, exp-log term) or the CPU is not
// covered, or the scalar path is forced.
bool seg_loss_sums_simd(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits,
                        const ArrayArg& target, double* sums, int64_t* counts, int64_t* bad);
bool seg_loss_grad_simd(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits,
                        const ArrayArg& target, const double* grad_sums, const ArrayArg& grad);

// mode 0 forces the scalar path, 1 uses AVX2 where the CPU has it (the default; the environment
// variable MEDSEG_LOSSES_SIMD=0 starts in mode 0), anything else only queries. Returns 1 when the
// AVX2 path is in use.
int loss_simd_mode(int mode);

// Test hook: y = f(x) elementwise for f = exp, log, log1p (fast_log1p01, x in [0, 1]) or sigmoid,
// with the AVX2 or the scalar float functions. False when that path is not available.
enum class LossMathFn : int { Exp = 0, Log = 1, Log1p = 2, Sigmoid = 3 };
bool loss_math(LossMathFn fn, bool use_simd, const float* x, float* y, int64_t n);
bool loss_math_scalar(LossMathFn fn, const float* x, float* y, int64_t n);

}  // namespace medseg::cpu
