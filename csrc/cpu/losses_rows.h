// Float element loops of the CPU loss drivers, compiled for several instruction sets
// (AVX2+FMA and the baseline) and chosen at load time (GCC/Clang target_clones). The math is
// the shared MSF_HDI code of medseg/losses.h; these are plain loops over one tile row.
#pragma once

#include <cstdint>

namespace medseg::cpu::rows {

// p = exp(x - m); s += p
void softmax_exp(const float* x, const float* m, float* p, float* s, int64_t n);
// p = sigmoid(x)
void sigmoid(const float* x, float* p, int64_t n);
// tp = t * FL(x, t), tn = (valid - t) * FL(x, t)   (sigmoid focal)
void sigmoid_focal_fwd(const float* x, const float* t, const float* valid, float* tp, float* tn, int64_t n,
                       float gamma, bool hard);
// g += (gtp t + gtn (valid - t)) dFL/dx
void sigmoid_focal_bwd(const float* x, const float* t, const float* valid, float* g, int64_t n, float gamma,
                       float gtp, float gtn, bool hard);
// out = t * FL(x - lse, q)   (softmax focal)
void softmax_focal_fwd(const float* x, const float* lse, const float* q, const float* t, float* out, int64_t n,
                       float gamma);
// h = gtp t dFL/dl; g += h; sh += h
void softmax_focal_bwd(const float* x, const float* lse, const float* q, const float* t, float* g, float* sh,
                       int64_t n, float gamma, float gtp);

// sum of v[0..n) in double, four interleaved accumulators combined as (a0 + a1) + (a2 + a3)
double sum_double(const float* v, int64_t n);
// si = p t, sp = p valid   (or p^2 valid^2, and sg = t^2 when squared)
void dice_terms(const float* p, const float* t, const float* valid, float* si, float* sp, float* sg, int64_t n,
                bool squared);
// g = gi t + gp valid (or (gi t + 2 gp p) valid when squared); su += g p (softmax only)
void dice_upstream(const float* p, const float* t, const float* valid, float* g, float* su, int64_t n, float gi,
                   float gp, bool squared, bool softmax);
// g = p (g - su) (softmax) or g p (1 - p) (sigmoid)
void dice_through_activation(const float* p, float* g, const float* su, int64_t n, bool softmax);
// p *= s
void scale(float* p, const float* s, int64_t n);

}  // namespace medseg::cpu::rows
