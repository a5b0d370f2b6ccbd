// Float element loops of the CPU loss drivers, one clone per instruction set (see losses_rows.h).
// Branch-free selects on floats are if-converted (and the loops vectorised) only without
// trapping-math; no code here relies on FP exceptions.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "losses_rows.h"

#include "medseg/losses.h"

// x86-64-v3 (AVX2, FMA, ...) is chosen by CPU features, so AMD CPUs get it too ("arch=haswell" is
// chosen by CPU model and is not). GCC 12+; other compilers build the baseline only.
// These loops now serve the scalar fallback (float64 logits go elsewhere; one-hot targets, the
// exp-log term, CPUs without AVX2, MEDSEG_LOSSES_SIMD=0). The hot configurations run on the
// explicit AVX2 path of losses_avx2.cpp, chosen by __builtin_cpu_supports after start-up: on some
// virtual machines (the development one included) the ifunc resolver of target_clones picks the
// default clone although the CPU has AVX2.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && !defined(MEDSEG_NO_CLONES)
#define MSF_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MSF_CLONES
#endif

namespace medseg::cpu::rows {

MSF_CLONES void softmax_exp(const float* __restrict x, const float* __restrict m, float* __restrict p,
                            float* __restrict s, int64_t n) {
    for (int64_t v = 0; v < n; ++v) {
        p[v] = loss_exp(x[v] - m[v]);
        s[v] += p[v];
    }
}

MSF_CLONES void sigmoid(const float* __restrict x, float* __restrict p, int64_t n) {
    for (int64_t v = 0; v < n; ++v) p[v] = medseg::sigmoid(x[v]);
}

MSF_CLONES void sigmoid_focal_fwd(const float* __restrict x, const float* __restrict t, const float* __restrict valid,
                                  float* __restrict tp, float* __restrict tn, int64_t n, float gamma, bool hard) {
    if (gamma == 2.0f && hard) {
        for (int64_t v = 0; v < n; ++v) {
            const float fl = sigmoid_focal<float, 2>(x[v], t[v], gamma, false, true).value;
            tp[v] = t[v] * fl;
            tn[v] = (valid[v] - t[v]) * fl;
        }
    } else if (gamma == 2.0f) {
        for (int64_t v = 0; v < n; ++v) {
            const float fl = sigmoid_focal<float, 2>(x[v], t[v], gamma, false, false).value;
            tp[v] = t[v] * fl;
            tn[v] = (valid[v] - t[v]) * fl;
        }
    } else {
        for (int64_t v = 0; v < n; ++v) {
            const float fl = sigmoid_focal<float, -1>(x[v], t[v], gamma, false, hard).value;
            tp[v] = t[v] * fl;
            tn[v] = (valid[v] - t[v]) * fl;
        }
    }
}

MSF_CLONES void sigmoid_focal_bwd(const float* __restrict x, const float* __restrict t, const float* __restrict valid,
                                  float* __restrict g, int64_t n, float gamma, float gtp, float gtn, bool hard) {
    if (gamma == 2.0f && hard) {
        for (int64_t v = 0; v < n; ++v) {
            const float coef = gtp * t[v] + gtn * (valid[v] - t[v]);
            g[v] += coef * sigmoid_focal<float, 2>(x[v], t[v], gamma, true, true).dx;
        }
    } else if (gamma == 2.0f) {
        for (int64_t v = 0; v < n; ++v) {
            const float coef = gtp * t[v] + gtn * (valid[v] - t[v]);
            g[v] += coef * sigmoid_focal<float, 2>(x[v], t[v], gamma, true, false).dx;
        }
    } else {
        for (int64_t v = 0; v < n; ++v) {
            const float coef = gtp * t[v] + gtn * (valid[v] - t[v]);
            g[v] += coef * sigmoid_focal<float, -1>(x[v], t[v], gamma, true, hard).dx;
        }
    }
}

MSF_CLONES void softmax_focal_fwd(const float* __restrict x, const float* __restrict lse, const float* __restrict q,
                                  const float* __restrict t, float* __restrict out, int64_t n, float gamma) {
    if (gamma == 2.0f) {
        for (int64_t v = 0; v < n; ++v) out[v] = t[v] * softmax_focal_value<float, 2>(x[v] - lse[v], q[v], gamma);
    } else {
        for (int64_t v = 0; v < n; ++v) out[v] = t[v] * softmax_focal_value<float, -1>(x[v] - lse[v], q[v], gamma);
    }
}

MSF_CLONES void softmax_focal_bwd(const float* __restrict x, const float* __restrict lse, const float* __restrict q,
                                  const float* __restrict t, float* __restrict g, float* __restrict sh, int64_t n,
                                  float gamma, float gtp) {
    if (gamma == 2.0f) {
        for (int64_t v = 0; v < n; ++v) {
            const float h = gtp * t[v] * softmax_focal_dl<float, 2>(x[v] - lse[v], q[v], gamma);
            g[v] += h;
            sh[v] += h;
        }
    } else {
        for (int64_t v = 0; v < n; ++v) {
            const float h = gtp * t[v] * softmax_focal_dl<float, -1>(x[v] - lse[v], q[v], gamma);
            g[v] += h;
            sh[v] += h;
        }
    }
}

MSF_CLONES double sum_double(const float* __restrict v, int64_t n) {
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += static_cast<double>(v[i]);
        a1 += static_cast<double>(v[i + 1]);
        a2 += static_cast<double>(v[i + 2]);
        a3 += static_cast<double>(v[i + 3]);
    }
    for (; i < n; ++i) a0 += static_cast<double>(v[i]);
    return (a0 + a1) + (a2 + a3);
}

MSF_CLONES void dice_terms(const float* __restrict p, const float* __restrict t, const float* __restrict valid,
                           float* __restrict si, float* __restrict sp, float* __restrict sg, int64_t n, bool squared) {
    if (squared) {
        for (int64_t v = 0; v < n; ++v) {
            const float pv = p[v] * valid[v];
            si[v] = pv * t[v];
            sp[v] = pv * pv;
            sg[v] = t[v] * t[v];
        }
    } else {
        for (int64_t v = 0; v < n; ++v) {
            si[v] = p[v] * t[v];
            sp[v] = p[v] * valid[v];
        }
    }
}

MSF_CLONES void dice_upstream(const float* __restrict p, const float* __restrict t, const float* __restrict valid,
                              float* __restrict g, float* __restrict su, int64_t n, float gi, float gp, bool squared,
                              bool softmax) {
    if (squared) {
        for (int64_t v = 0; v < n; ++v) g[v] = (gi * t[v] + 2.0f * gp * p[v]) * valid[v];
    } else {
        for (int64_t v = 0; v < n; ++v) g[v] = gi * t[v] + gp * valid[v];
    }
    if (softmax) {
        for (int64_t v = 0; v < n; ++v) su[v] += g[v] * p[v];
    }
}

MSF_CLONES void dice_through_activation(const float* __restrict p, float* __restrict g, const float* __restrict su,
                                        int64_t n, bool softmax) {
    if (softmax) {
        for (int64_t v = 0; v < n; ++v) g[v] = p[v] * (g[v] - su[v]);
    } else {
        for (int64_t v = 0; v < n; ++v) g[v] = g[v] * p[v] * (1.0f - p[v]);
    }
}

MSF_CLONES void scale(float* __restrict p, const float* __restrict s, int64_t n) {
    for (int64_t v = 0; v < n; ++v) p[v] *= s[v];
}

}  // namespace medseg::cpu::rows
