// Per-voxel math of the fused segmentation losses, shared by the CPU and CUDA drivers.
//
// The kernels compute, per (batch item b, class k), five sums over the voxels of b:
//   I = sum p*t,  P = sum p (or p^2),  G = sum t (or t^2),  Tp = sum t*term,  Tn = sum (1-t)*term
// where p is the Dice activation (softmax over classes or per-class sigmoid) of the logits, t the
// one-hot target (built on the fly from integer labels) and `term` a per-element loss term
// (softmax focal, sigmoid focal or the exponential-logarithmic cross term). Every loss of the
// family is a small formula on these sums (evaluated by torch in Python, so autograd gives the
// gradient with respect to the sums), and the backward kernel turns those (B, K, 5) gradients
// into the gradient of the logits in one pass, recomputing the activation from the logits.
//
// No pybind11, no torch: raw pointers, extents and element strides.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "medseg/array_arg.h"
#include "medseg/common.h"
#include "medseg/strided.h"

// Hot element math is forced inline so the CPU element loops vectorise (a call blocks that).
#if defined(__CUDACC__)
#define MSF_HDI __host__ __device__ __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
#define MSF_HDI inline __attribute__((always_inline))
#else
#define MSF_HDI inline
#endif

namespace medseg {

enum : int { kSumI = 0, kSumP = 1, kSumG = 2, kSumTp = 3, kSumTn = 4, kNumSums = 5 };
// The same indices as a type, for the bindings (Python indexes the (B, K, 5) sums by these names).
enum class SegSum : int { I = kSumI, P = kSumP, G = kSumG, Tp = kSumTp, Tn = kSumTn };

enum class DiceAct : int { Softmax = 0, Sigmoid = 1 };
enum class PixelTerm : int { None = 0, FocalSoftmax = 1, FocalSigmoid = 2, ExpLogSoftmax = 3 };

struct SegLossConfig {
    int64_t classes = 0;
    DiceAct act = DiceAct::Softmax;
    PixelTerm term = PixelTerm::None;
    int term_first = 0;          // softmax terms normalise over classes [term_first, K) (MONAI's include_background=False)
    double gamma = 2.0;          // focal exponent, or the exp-log cross exponent
    bool squared_pred = false;   // P = sum p^2, G = sum t^2
    bool onehot = false;         // target holds K channels (float or integer) instead of labels
    bool has_ignore = false;
    int64_t ignore_index = -1;
    double explog_eps = 1e-7;    // (-log p) is clamped below at this value in the exp-log term
};

// Every array of a call is a 5-D ArrayArg (batch, class, s0, s1, s2) over one 5-D Layout: Python
// collapses the spatial axes to 3 (leading 1s when fewer), so the loss kernels use the arrays and
// layouts of every other kernel family; these accessors name the axes.
MSF_HDI int64_t seg_batch(const Layout& shape) { return shape.shape[0]; }
MSF_HDI int64_t seg_classes(const Layout& shape) { return shape.shape[1]; }
MSF_HDI int64_t seg_extent(const Layout& shape, int axis) { return shape.shape[2 + axis]; }   // spatial axis 0..2
MSF_HDI int64_t seg_voxels(const Layout& shape) { return shape.shape[2] * shape.shape[3] * shape.shape[4]; }
MSF_HDI int64_t batch_stride(const ArrayArg& a) { return a.strides.s[0]; }
MSF_HDI int64_t class_stride(const ArrayArg& a) { return a.strides.s[1]; }
MSF_HDI const int64_t* spatial_strides(const ArrayArg& a) { return a.strides.s + 2; }

MSF_HDI int64_t spatial_offset(const Layout& shape, const int64_t* strides, int64_t v) {
    const int64_t i2 = v % seg_extent(shape, 2);
    const int64_t r = v / seg_extent(shape, 2);
    const int64_t i1 = r % seg_extent(shape, 1);
    const int64_t i0 = r / seg_extent(shape, 1);
    return i0 * strides[0] + i1 * strides[1] + i2 * strides[2];
}

// ---------------------------------------------------------------------------------------------
// Elementary functions. Float: polynomial exp/log (Cephes coefficients, S. Moshier) in branch-free
// selects, so the GPU runs the same arithmetic and the CPU SIMD path (csrc/cpu/losses_simd.h)
// reproduces them bit for bit (same operations in the same order, no FMA on the CPU). About 1 ulp
// over the whole float range, subnormal results and inputs included; exp: +inf above ~88.72, 0
// below ~-103.97; log: -inf at 0, NaN below 0; NaN propagates. Double: the libm functions (the
// float64 path is the exact reference path).

MSF_HDI float fast_exp(float x) {
    const bool nan = !(x == x);
    float xc = x < -104.0f ? -104.0f : x;                  // exp(-104) rounds to 0
    xc = xc > 89.0f ? 89.0f : xc;                          // exp(89) overflows to inf
    xc = nan ? 0.0f : xc;                                  // (keeps the int conversion defined)
    const float magic = 12582912.0f;                        // 1.5 * 2^23: round to nearest integer
    float n = xc * 1.44269504088896341f + magic;
    n = n - magic;
    float r = xc - n * 0.693359375f;                       // Cody-Waite: ln 2 in two parts
    r = r + n * 2.12194440e-4f;
    const float z = r * r;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    // 2^n in two exact steps (n in [-150, 128]), so subnormal and overflowing results round once.
    const int32_t ni = static_cast<int32_t>(n);
    const int32_t n1 = ni >> 1;
    const int32_t n2 = ni - n1;
    const float out = (y * bit_cast<float>((n1 + 127) << 23)) * bit_cast<float>((n2 + 127) << 23);
    return nan ? x : out;
}

MSF_HDI float fast_log(float x) {
    const bool sub = x < 1.17549435e-38f;                  // subnormal (or zero, negative): scale by 2^23
    const float xs = sub ? x * 8388608.0f : x;
    const uint32_t bits = bit_cast<uint32_t>(xs);
    float e = static_cast<float>(static_cast<int32_t>((bits >> 23) & 0xffu) - 126);
    e = sub ? e - 23.0f : e;
    float m = bit_cast<float>((bits & 0x007fffffu) | 0x3f000000u);   // [0.5, 1)
    const bool low = m < 0.707106781186547524f;
    e = low ? e - 1.0f : e;
    m = low ? m + m - 1.0f : m - 1.0f;
    const float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y = y - 2.12194440e-4f * e;
    y = y - 0.5f * z;
    float out = m + y + 0.693359375f * e;
    out = x == INFINITY ? x : out;
    out = x == 0.0f ? -INFINITY : out;
    out = (x < 0.0f || !(x == x)) ? NAN : out;
    return out;
}

// log(1 + e) for e in [0, 1] (NaN propagates): 2 atanh(s) with s = e / (2 + e) in [0, 1/3], odd
// Taylor series to s^13 (truncation below 2e-9 relative). About 1 ulp, and tiny e (subnormal
// included) keep full relative precision, unlike log(1 + e) of the rounded sum.
MSF_HDI float fast_log1p01(float e) {
    const float s2 = (e + e) / (2.0f + e);    // 2 s (not s: e / 2 would round away the smallest subnormal)
    const float z = 0.25f * (s2 * s2);
    float y = 0.0769230769f;                 // 1/13
    y = y * z + 0.0909090909f;               // 1/11
    y = y * z + 0.111111111f;                // 1/9
    y = y * z + 0.142857143f;                // 1/7
    y = y * z + 0.2f;                        // 1/5
    y = y * z + 0.333333333f;                // 1/3
    y = y * z;
    return s2 * y + s2;
}

MSF_HDI float loss_exp(float x) { return fast_exp(x); }
MSF_HDI double loss_exp(double x) { return exp(x); }
MSF_HDI float loss_log(float x) { return fast_log(x); }
MSF_HDI double loss_log(double x) { return log(x); }
// log(1 + e) for e in [0, 1]
MSF_HDI float loss_log1p(float e) { return fast_log1p01(e); }
MSF_HDI double loss_log1p(double e) { return log1p(e); }

template <typename C> MSF_HDI C loss_max(C a, C b) { return a > b ? a : b; }

// base^gamma for base in [0, 1]; exact fast paths for the common integer exponents. G is the
// exponent when known at compile time (2 or 0; -1: read gamma), so CPU loops need no branch.
template <typename C, int G = -1>
MSF_HDI C pow_gamma(C base, C gamma) {
    if constexpr (G == 2) return base * base;
    if constexpr (G == 0) return C(1);
    if (gamma == C(2)) return base * base;
    if (gamma == C(1)) return base;
    if (gamma == C(0)) return C(1);
    if (base <= C(0)) return C(0);
    return loss_exp(gamma * loss_log(base));
}

// gamma * base^(gamma-1), the derivative of base^gamma (0 at base == 0 for gamma > 1; for
// gamma < 1 the caller multiplies by a factor that vanishes faster, see softmax_focal_dl).
template <typename C, int G = -1>
MSF_HDI C dpow_gamma(C base, C gamma) {
    if constexpr (G == 2) return C(2) * base;
    if constexpr (G == 0) return C(0);
    if (gamma == C(2)) return C(2) * base;
    if (gamma == C(1)) return C(1);
    if (gamma == C(0)) return C(0);
    if (base <= C(0)) return C(0);
    return gamma * loss_exp((gamma - C(1)) * loss_log(base));
}

template <typename C>
MSF_HDI C sigmoid(C x) {
    const C e = loss_exp(x >= C(0) ? -x : x);     // exp(-|x|)
    const C r = C(1) / (C(1) + e);
    return x >= C(0) ? r : e * r;
}

// ---------------------------------------------------------------------------------------------
// Softmax focal term (Lin et al. 2017, as in MONAI softmax_focal_loss):
//   FL(l) = -(1 - p)^gamma * l,  with l = log p the log-softmax of the target class.
template <typename C, int G = -1>
MSF_HDI C softmax_focal_value(C l, C p, C gamma) {
    return -pow_gamma<C, G>(C(1) - p, gamma) * l;
}

// dFL/dl = -(1-p)^gamma + gamma (1-p)^(gamma-1) p l   (dp/dl = p)
template <typename C, int G = -1>
MSF_HDI C softmax_focal_dl(C l, C p, C gamma) {
    const C q = C(1) - p;
    const C second = q > C(0) ? dpow_gamma<C, G>(q, gamma) * p * l : C(0);
    return -pow_gamma<C, G>(q, gamma) + second;
}

// Exponential-logarithmic cross term (Wong et al. 2018): (-l)^gamma with -l clamped at eps.
template <typename C>
MSF_HDI C explog_value(C l, C gamma, C eps) {
    const C a = loss_max(-l, eps);
    return pow_gamma(a, gamma);
}

template <typename C>
MSF_HDI C explog_dl(C l, C gamma, C eps) {
    if (-l <= eps) return C(0);
    return -dpow_gamma(-l, gamma);
}

// Sigmoid focal term (MONAI sigmoid_focal_loss): with a = -x (2t - 1) and q = sigmoid(a) (= 1 - p_t),
//   FL(x, t) = q^gamma * BCEWithLogits(x, t),   BCE = max(x, 0) - x t + log(1 + exp(-|x|)).
// The derivative: dFL/dx = q^gamma [ (sigmoid(x) - t) - gamma (2t - 1)(1 - q) BCE ].
template <typename C>
struct SigmoidFocal {
    C value, dx;
};

template <typename C, int G = -1>
MSF_HDI SigmoidFocal<C> sigmoid_focal(C x, C t, C gamma, bool want_grad, bool hard = false) {
    const C ax = x >= C(0) ? x : -x;
    const C e = loss_exp(-ax);                       // the one exp shared by BCE, q and sigmoid(x)
    const C u = C(1) + e;
    const C inv = C(1) / u;
    const C l1p = loss_log1p(e);             // log(1 + exp(-|x|))
    const C bce = (x > C(0) ? x : C(0)) - x * t + l1p;
    const C s = C(2) * t - C(1);
    const C a = -x * s;
    const C aa = a >= C(0) ? a : -a;
    const C ea = hard ? e : loss_exp(-aa);   // |a| == |x| when t is 0 or 1
    const C ua = hard ? u : C(1) + ea;
    const C inva = hard ? inv : C(1) / ua;
    const C q = a >= C(0) ? inva : ea * inva;        // sigmoid(a)
    C qg;
    if constexpr (G == 2) {
        qg = q * q;
    } else if constexpr (G == 0) {
        qg = C(1);
    } else if (gamma == C(2)) {
        qg = q * q;
    } else if (gamma == C(0)) {
        qg = C(1);
    } else {
        const C log_q = (a < C(0) ? a : C(0)) - (hard ? l1p : loss_log1p(ea));
        qg = loss_exp(gamma * log_q);
    }
    SigmoidFocal<C> out{qg * bce, C(0)};
    if (want_grad) {
        const C sx = x >= C(0) ? inv : e * inv;
        out.dx = qg * ((sx - t) - gamma * s * (C(1) - q) * bce);
    }
    return out;
}

// Label -> one-hot value of class k. With a single channel (sigmoid) the label is the target itself.
MSF_HDI bool label_in_range(int64_t label, int64_t classes) {
    return label >= 0 && label < (classes == 1 ? 2 : classes);
}

// A stored label as an integer; non-integral or huge float labels become an out-of-range value.
template <typename L>
MSF_HDI int64_t label_value(const L& raw) {
    if constexpr (std::is_integral<L>::value) {
        return static_cast<int64_t>(raw);
    } else {
        const double d = load_as<double>(raw);
        return (d == floor(d) && fabs(d) < 9.0e15) ? static_cast<int64_t>(d) : INT64_MIN;
    }
}

template <typename C>
MSF_HDI C onehot_of(int64_t label, int64_t k, int64_t classes) {
    if (classes == 1) return static_cast<C>(label);
    return label == k ? C(1) : C(0);
}

}  // namespace medseg
