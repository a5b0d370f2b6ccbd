// AVX2 path of the CPU fused-loss drivers (losses_sums.cpp, losses_grad.cpp call it first).
//
// Covers float compute (float32, float16, bfloat16 logits) with label-map targets and the terms
// None, softmax focal and sigmoid focal (the DiceFocalLoss / DiceLoss / FocalLoss hot paths); the
// rest (float64 logits, one-hot targets, the exp-log term) stays on the scalar tile path.
//
// Same tiles and work units as the scalar path (fixed voxel blocks, partial sums combined in
// block order, so results do not depend on the thread count). Per tile of <= 256 voxels:
//   labels -> int32 row (label, or -1 when the voxel does not count); logits -> float rows
//   (read in place when float32 and unit-stride); pass A: softmax over classes 8 voxels at a time
//   (exp rows, 1/sum, log-normaliser); pass B: per class, the Dice and focal element terms in
//   registers, summed over the tile in 8 float lanes and then added in double, lanes in a fixed
//   order. The sigmoid focal term shares one exp(-|x|) and one 1/(1 + exp(-|x|)) between
//   sigmoid(x), log(1 + exp(-|x|)) and the focal weight.
//
// Functions are compiled for AVX2 by target attributes (not by a flag on the whole file, so no
// inline function shared with other files is ever built for AVX2) and entered only after a
// run-time CPU check; loss_simd_mode(0) forces the scalar path (tests run both).
//
// One file of ~700 lines on purpose: the AVX2 helpers are file-local functions carrying the target
// attribute, and they must inline into the tile passes; split over several files they would become
// out-of-line calls, or move into a shared header where other files could build them for AVX2.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <vector>

#include "losses_cpu.h"
#include "losses_simd.h"
#include "losses_tile.h"
#include "simd_switch.h"
#include "medseg/parallel.h"

namespace medseg::cpu {

namespace {

SimdSwitch& losses_switch() {
    static SimdSwitch sw("MEDSEG_LOSSES_SIMD");
    return sw;
}

bool simd_active() { return losses_switch().active(); }

}  // namespace

int loss_simd_mode(int mode) { return losses_switch().set_mode(mode); }

#if defined(MEDSEG_HAVE_AVX2_LOSSES)

namespace {

using namespace losses_detail;
using namespace simd;

enum : int { kActSoftmax = 0, kActSigmoid = 1 };
enum : int { kTermNone = 0, kTermFocalSoftmax = 1, kTermFocalSigmoid = 2 };

// Per-thread tile buffers (class-major rows of cap floats; cap is a multiple of 8).
struct Buffers {
    int64_t K, cap;
    std::vector<float> x, e, q, g;          // K * cap
    std::vector<float> r, lse, r2, lse2, su, sh;
    std::vector<int32_t> lab;
    std::vector<uint8_t> direct;           // per 8 voxels: softmax exps taken without the max shift
    std::vector<int64_t> off;
    std::vector<const float*> xr;
    std::vector<float*> gr;
    Buffers(int64_t k, int64_t c)
        : K(k), cap(c), x(k * c), e(k * c), q(k * c), g(k * c), r(c), lse(c), r2(c), lse2(c), su(c), sh(c), lab(c), direct(c / 8 + 1),
          off(c), xr(k), gr(k) {}
};

// Element offset of voxel v0 when voxels [v0, v0 + len) are one unit-stride run, else -1.
inline int64_t unit_run_base(const Layout& shape, const int64_t* ss, int64_t v0, int64_t len) {
    if (ss[2] != 1) return -1;
    if (v0 % seg_extent(shape, 2) + len <= seg_extent(shape, 2)) return spatial_offset(shape, ss, v0);
    return -1;
}

struct Job {
    Layout shape;
    SegLossConfig cfg;
    ArrayArg logits, target, grad;
    const double* grad_sums = nullptr;
    int64_t cap = 0;
    int64_t term_first = 0;
    bool reuse_softmax = false;   // softmax term over all classes with the softmax Dice: q = p
    float gamma = 2.0f;
    // typed steps
    void (*load_x)(const Job&, int64_t b, int64_t v0, int64_t len, int64_t len8, Buffers&) = nullptr;
    void (*load_labels)(const Job&, int64_t b, int64_t v0, int64_t len, int64_t len8, Buffers&, int64_t& count,
                        int64_t& bad) = nullptr;
    bool (*grad_rows)(const Job&, int64_t b, int64_t v0, int64_t len, int64_t len8, Buffers&) = nullptr;
    void (*store_g)(const Job&, int64_t b, int64_t v0, int64_t len, Buffers&) = nullptr;
};

template <typename T>
MSF_AVX2 void load_x_t(const Job& job, int64_t b, int64_t v0, int64_t len, int64_t len8, Buffers& buf) {
    const int64_t K = seg_classes(job.shape), cap = buf.cap;
    const T* xb = reinterpret_cast<const T*>(job.logits.ptr) + b * batch_stride(job.logits);
    const int64_t base = unit_run_base(job.shape, spatial_strides(job.logits), v0, len);
    if (base < 0) spatial_offsets(job.shape, spatial_strides(job.logits), v0, len, buf.off.data());
    for (int64_t k = 0; k < K; ++k) {
        const T* xk = xb + k * class_stride(job.logits);
        if constexpr (std::is_same_v<T, float>) {
            if (base >= 0 && len == len8) {
                buf.xr[k] = xk + base;
                continue;
            }
        }
        float* dst = buf.x.data() + k * cap;
        if (base >= 0) {
            const T* src = xk + base;
            for (int64_t v = 0; v < len; ++v) dst[v] = load_as<float>(src[v]);
        } else {
            const int64_t* off = buf.off.data();
            for (int64_t v = 0; v < len; ++v) dst[v] = load_as<float>(xk[off[v]]);
        }
        for (int64_t v = len; v < len8; ++v) dst[v] = 0.0f;
        buf.xr[k] = dst;
    }
}

template <typename L>
MSF_AVX2 void load_labels_t(const Job& job, int64_t b, int64_t v0, int64_t len, int64_t len8, Buffers& buf,
                            int64_t& count, int64_t& bad) {
    const L* tb = reinterpret_cast<const L*>(job.target.ptr) + b * batch_stride(job.target);
    const int64_t K = seg_classes(job.shape);
    const int64_t kr = K == 1 ? 2 : K;
    const bool has_ignore = job.cfg.has_ignore;
    const int64_t ignore = job.cfg.ignore_index;
    int32_t* lab = buf.lab.data();
    int64_t n_ok = 0, n_bad = 0;
    const int64_t base = unit_run_base(job.shape, spatial_strides(job.target), v0, len);
    // Branch-free (no short circuits), so the contiguous loop vectorises.
    const uint64_t ukr = static_cast<uint64_t>(kr);
#define MSF_LABEL_STEP(RAW)                                                                   \
    {                                                                                         \
        const int64_t y = label_value(RAW);                                                   \
        const bool ignored = has_ignore & (y == ignore);                                      \
        const bool in_range = static_cast<uint64_t>(y) < ukr;                                 \
        const bool ok = !ignored & in_range;                                                  \
        lab[v] = ok ? static_cast<int32_t>(y) : -1;                                           \
        n_ok += ok;                                                                           \
        n_bad += !ignored & !in_range;                                                        \
    }
    if (base >= 0) {
        const L* src = tb + base;
        for (int64_t v = 0; v < len; ++v) MSF_LABEL_STEP(src[v])
    } else {
        spatial_offsets(job.shape, spatial_strides(job.target), v0, len, buf.off.data());
        const int64_t* off = buf.off.data();
        for (int64_t v = 0; v < len; ++v) MSF_LABEL_STEP(tb[off[v]])
    }
#undef MSF_LABEL_STEP
    for (int64_t v = len; v < len8; ++v) lab[v] = -1;
    count += n_ok;
    bad += n_bad;
}

// Gradient rows: written in place when float32 and unit-stride (returns true), else into buf.g.
template <typename T>
MSF_AVX2 bool grad_rows_t(const Job& job, int64_t b, int64_t v0, int64_t len, int64_t len8, Buffers& buf) {
    const int64_t K = seg_classes(job.shape);
    if constexpr (std::is_same_v<T, float>) {
        const int64_t base = unit_run_base(job.shape, spatial_strides(job.grad), v0, len);
        if (base >= 0 && len == len8) {
            T* gb = reinterpret_cast<T*>(job.grad.ptr) + b * batch_stride(job.grad) + base;
            for (int64_t k = 0; k < K; ++k) buf.gr[k] = gb + k * class_stride(job.grad);
            return true;
        }
    }
    for (int64_t k = 0; k < K; ++k) buf.gr[k] = buf.g.data() + k * buf.cap;
    return false;
}

template <typename T>
MSF_AVX2 void store_g_t(const Job& job, int64_t b, int64_t v0, int64_t len, Buffers& buf) {
    const int64_t K = seg_classes(job.shape);
    T* gb = reinterpret_cast<T*>(job.grad.ptr) + b * batch_stride(job.grad);
    const int64_t base = unit_run_base(job.shape, spatial_strides(job.grad), v0, len);
    if (base < 0) spatial_offsets(job.shape, spatial_strides(job.grad), v0, len, buf.off.data());
    for (int64_t k = 0; k < K; ++k) {
        const float* src = buf.g.data() + k * buf.cap;
        T* gk = gb + k * class_stride(job.grad);
        if (base >= 0) {
            T* dst = gk + base;
            for (int64_t v = 0; v < len; ++v) dst[v] = store_from<T, float>(src[v]);
        } else {
            const int64_t* off = buf.off.data();
            for (int64_t v = 0; v < len; ++v) gk[off[v]] = store_from<T, float>(src[v]);
        }
    }
}

// Softmax over classes [first, K), 8 voxels at a time: e_k = exp(x_k - max) (rows of e),
// r = 1 / sum_k e_k, and (when lse is given) the log-normaliser max - log(r). As load_tile.
// With `direct`, 8 voxels whose logits all lie in [-60, 60] skip the shift (e_k = exp(x_k), no
// overflow or underflow there; p and the normaliser are the same to rounding) and are flagged,
// so the sigmoid focal term can take exp(-|x|) from e_k instead of a second exp.
MSF_AVX2 void softmax_pass(const float* const* xr, int64_t first, int64_t K, int64_t len8, float* e, int64_t cap,
                           float* r, float* lse, uint8_t* direct) {
    for (int64_t c = 0; c < len8; c += 8) {
        vf m = _mm256_loadu_ps(xr[first] + c);
        bool in_range = false;
        if (direct != nullptr) {
            vf amax = _mm256_andnot_ps(vset(-0.0f), m);
            for (int64_t k = first + 1; k < K; ++k)
                amax = _mm256_max_ps(_mm256_andnot_ps(vset(-0.0f), _mm256_loadu_ps(xr[k] + c)), amax);
            // ordered compare: a NaN logit (maxps passes it through as its 2nd operand) fails it
            in_range = _mm256_movemask_ps(_mm256_cmp_ps(amax, vset(60.0f), _CMP_LE_OQ)) == 0xff;
            direct[c >> 3] = in_range ? 1 : 0;
        }
        if (in_range) {
            m = vset(0.0f);
        } else {
            for (int64_t k = first + 1; k < K; ++k) m = vmax(_mm256_loadu_ps(xr[k] + c), m);
        }
        vf s = vset(0.0f);
        for (int64_t k = first; k < K; ++k) {
            const vf ek = vexp(vsub(_mm256_loadu_ps(xr[k] + c), m));
            _mm256_storeu_ps(e + k * cap + c, ek);
            s = vadd(s, ek);
        }
        const vf rr = vdiv(vset(1.0f), s);
        _mm256_storeu_ps(r + c, rr);
        if (lse != nullptr) _mm256_storeu_ps(lse + c, vsub(m, vlog(rr)));
    }
}

// Label row -> one-hot mask of class kk and the "counted" mask.
MSF_AVX2_INLINE void masks(const int32_t* lab, int64_t c, vi kv, vf& t, vf& valid) {
    const vi l = _mm256_loadu_si256(reinterpret_cast<const vi*>(lab + c));
    t = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(l, kv)), vset(1.0f));
    valid = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(l, _mm256_set1_epi32(-1))), vset(1.0f));
}

// The shared exp(-|x|), 1 + exp(-|x|) and its inverse; sigmoid(x) from them.
struct SigParts {
    vm nonneg;
    vf e, u, inv;
};
MSF_AVX2_INLINE SigParts sig_parts(vf x) {
    SigParts s;
    s.nonneg = vge(x, vset(0.0f));
    s.e = vexp(vsel(s.nonneg, vneg(x), x));
    s.u = vadd(vset(1.0f), s.e);
    s.inv = vdiv(vset(1.0f), s.u);
    return s;
}
MSF_AVX2_INLINE vf sig_of(const SigParts& s) { return vsel(s.nonneg, s.inv, vmul(s.e, s.inv)); }
// The same from ex = exp(x) (|x| <= 60): exp(-|x|) = 1 / ex for x >= 0, else ex.
MSF_AVX2_INLINE SigParts sig_parts_from_exp(vf x, vf ex) {
    SigParts s;
    s.nonneg = vge(x, vset(0.0f));
    s.e = vsel(s.nonneg, vdiv(vset(1.0f), ex), ex);
    s.u = vadd(vset(1.0f), s.e);
    s.inv = vdiv(vset(1.0f), s.u);
    return s;
}

// The sigmoid parts a configuration needs at columns c..c+7 (none for softmax without the
// sigmoid focal term), reusing the softmax exps where they were taken without the max shift.
template <int ACT, int TERM>
MSF_AVX2_INLINE SigParts tile_sig_parts(const Buffers& buf, const float* ek, int64_t c, vf x) {
    SigParts sp{};
    if constexpr (ACT == kActSoftmax && TERM == kTermFocalSigmoid) {
        sp = buf.direct[c >> 3] ? sig_parts_from_exp(x, _mm256_loadu_ps(ek + c)) : sig_parts(x);
    } else if constexpr (ACT == kActSigmoid || TERM == kTermFocalSigmoid) {
        sp = sig_parts(x);
    }
    return sp;
}

// Sigmoid focal term with hard targets (medseg::sigmoid_focal with hard = true).
struct SigFocal {
    vf qg, q, bce, s;
};
template <int G>
MSF_AVX2_INLINE SigFocal sig_focal(vf x, vf t, const SigParts& sp, vf gamma) {
    SigFocal f;
    const vf l1p = vlog1p01(sp.e);
    f.bce = vadd(vsub(vsel(vgt(x, vset(0.0f)), x, vset(0.0f)), vmul(x, t)), l1p);
    f.s = vsub(vmul(vset(2.0f), t), vset(1.0f));
    const vf a = vmul(vneg(x), f.s);
    f.q = vsel(vge(a, vset(0.0f)), sp.inv, vmul(sp.e, sp.inv));
    if constexpr (G == 2) {
        f.qg = vmul(f.q, f.q);
    } else if constexpr (G == 0) {
        f.qg = vset(1.0f);
    } else {
        const vf log_q = vsub(vsel(vlt(a, vset(0.0f)), a, vset(0.0f)), l1p);
        f.qg = vexp(vmul(gamma, log_q));
    }
    return f;
}

// base^gamma and gamma base^(gamma-1) as pow_gamma / dpow_gamma (G: 2, 1, 0 or -1 = any).
template <int G>
MSF_AVX2_INLINE vf vpow_gamma(vf base, vf gamma) {
    if constexpr (G == 2) return vmul(base, base);
    if constexpr (G == 1) return base;
    if constexpr (G == 0) return vset(1.0f);
    const vm pos = vgt(base, vset(0.0f));
    return vsel(pos, vexp(vmul(gamma, vlog(vsel(pos, base, vset(1.0f))))), vset(0.0f));
}
template <int G>
MSF_AVX2_INLINE vf vdpow_gamma(vf base, vf gamma) {
    if constexpr (G == 2) return vmul(vset(2.0f), base);
    if constexpr (G == 1) return vset(1.0f);
    if constexpr (G == 0) return vset(0.0f);
    const vm pos = vgt(base, vset(0.0f));
    return vsel(pos, vmul(gamma, vexp(vmul(vsub(gamma, vset(1.0f)), vlog(vsel(pos, base, vset(1.0f)))))),
                vset(0.0f));
}

// Softmax of a tile (pass A) into buf.e / buf.r (and buf.q / r2 / lse2 for a term normalised
// over [term_first, K) that cannot reuse the Dice softmax).
template <int ACT, int TERM>
MSF_AVX2_INLINE void tile_softmax(const Job& job, int64_t len8, Buffers& buf) {
    const int64_t K = seg_classes(job.shape), cap = buf.cap;
    const float* const* xr = buf.xr.data();
    if constexpr (ACT == kActSoftmax)
        softmax_pass(xr, 0, K, len8, buf.e.data(), cap, buf.r.data(),
                     TERM == kTermFocalSoftmax && job.reuse_softmax ? buf.lse.data() : nullptr,
                     TERM == kTermFocalSigmoid ? buf.direct.data() : nullptr);
    if constexpr (TERM == kTermFocalSoftmax) {
        if (!job.reuse_softmax)
            softmax_pass(xr, job.term_first, K, len8, buf.q.data(), cap, buf.r2.data(), buf.lse2.data(), nullptr);
    }
}

// Rows of the focal-softmax term: its own softmax (exps, 1 / sum, log-normaliser), or the Dice
// softmax's when both use the same logits (Job::reuse_softmax).
struct FocalRows {
    const float *exps, *recip, *lse;
    int64_t cap;
    FocalRows(const Job& job, const Buffers& buf)
        : exps(job.reuse_softmax ? buf.e.data() : buf.q.data()),
          recip(job.reuse_softmax ? buf.r.data() : buf.r2.data()),
          lse(job.reuse_softmax ? buf.lse.data() : buf.lse2.data()),
          cap(buf.cap) {}
    MSF_AVX2_INLINE vf prob(int64_t k, int64_t c) const {
        return vmul(_mm256_loadu_ps(exps + k * cap + c), _mm256_loadu_ps(recip + c));
    }
    MSF_AVX2_INLINE vf log_prob(vf x, int64_t c) const { return vsub(x, _mm256_loadu_ps(lse + c)); }
};

// Dice upstream dL/dp of one class: gi * t + gp * valid, or (gi * t + 2 gp p) * valid when squared.
template <bool SQ>
MSF_AVX2_INLINE vf dice_upstream(vf gi, vf gp, vf gp2, vf t, vf p, vf valid) {
    return SQ ? vmul(vadd(vmul(gi, t), vmul(gp2, p)), valid) : vadd(vmul(gi, t), vmul(gp, valid));
}

template <int ACT, int TERM, int G, bool SQ>
MSF_AVX2 void sums_units(const Job& job, int64_t begin, int64_t end, double* partial, int64_t stride) {
    const int64_t K = seg_classes(job.shape), N = seg_voxels(job.shape), cap = job.cap;
    const int64_t units_per_item = (N + kUnit - 1) / kUnit;
    [[maybe_unused]] const vf gamma = vset(job.gamma);
    Buffers buf(K, cap);
    [[maybe_unused]] const FocalRows focal(job, buf);
    for (int64_t u = begin; u < end; ++u) {
        const int64_t b = u / units_per_item;
        const int64_t first = (u % units_per_item) * kUnit;
        const int64_t last = std::min(N, first + kUnit);
        double* acc = partial + u * stride;
        int64_t count = 0, bad = 0;
        for (int64_t v0 = first; v0 < last; v0 += cap) {
            const int64_t len = std::min(cap, last - v0);
            const int64_t len8 = (len + 7) & ~int64_t(7);
            job.load_labels(job, b, v0, len, len8, buf, count, bad);
            job.load_x(job, b, v0, len, len8, buf);
            tile_softmax<ACT, TERM>(job, len8, buf);
            for (int64_t k = 0; k < K; ++k) {
                const float* xk = buf.xr[k];
                [[maybe_unused]] const float* ek = buf.e.data() + k * cap;
                const vi kv = _mm256_set1_epi32(K == 1 ? 1 : static_cast<int32_t>(k));
                [[maybe_unused]] const bool term_on = TERM == kTermFocalSoftmax && k >= job.term_first;
                vf aI = vset(0.0f), aP = aI, aG = aI, aTp = aI, aTn = aI;
                for (int64_t c = 0; c < len8; c += 8) {
                    vf t, valid;
                    masks(buf.lab.data(), c, kv, t, valid);
                    const vf x = _mm256_loadu_ps(xk + c);
                    [[maybe_unused]] const SigParts sp = tile_sig_parts<ACT, TERM>(buf, ek, c, x);
                    vf p;
                    if constexpr (ACT == kActSoftmax) {
                        p = vmul(_mm256_loadu_ps(ek + c), _mm256_loadu_ps(buf.r.data() + c));
                    } else {
                        p = sig_of(sp);
                    }
                    if constexpr (SQ) {
                        const vf pv = vmul(p, valid);
                        aI = vadd(aI, vmul(pv, t));
                        aP = vadd(aP, vmul(pv, pv));
                        aG = vadd(aG, vmul(t, t));
                    } else {
                        aI = vadd(aI, vmul(p, t));
                        aP = vadd(aP, vmul(p, valid));
                        aG = vadd(aG, t);
                    }
                    if constexpr (TERM == kTermFocalSigmoid) {
                        const SigFocal f = sig_focal<G>(x, t, sp, gamma);
                        const vf fl = vmul(f.qg, f.bce);
                        aTp = vadd(aTp, vmul(t, fl));
                        aTn = vadd(aTn, vmul(vsub(valid, t), fl));
                    } else if constexpr (TERM == kTermFocalSoftmax) {
                        if (term_on) {
                            const vf q = focal.prob(k, c);
                            const vf l = focal.log_prob(x, c);
                            const vf fl = vmul(vneg(vpow_gamma<G>(vsub(vset(1.0f), q), gamma)), l);
                            aTp = vadd(aTp, vmul(t, fl));
                        }
                    }
                }
                double* a = acc + k * kNumSums;
                a[kSumI] += vsum_double(aI);
                a[kSumP] += vsum_double(aP);
                a[kSumG] += vsum_double(aG);
                if constexpr (TERM != kTermNone) {
                    a[kSumTp] += vsum_double(aTp);
                    a[kSumTn] += vsum_double(aTn);
                }
            }
        }
        acc[K * kNumSums] = static_cast<double>(count);
        acc[K * kNumSums + 1] = static_cast<double>(bad);
    }
}

inline bool aligned32(const float* p) { return (reinterpret_cast<uintptr_t>(p) & 31u) == 0; }

// Final gradient values go to memory with streaming stores where aligned: the gradient is not
// read again here, and the stores skip reading the destination lines first (a third less traffic).
MSF_AVX2_INLINE void store_row(float* p, vf v, bool stream) {
    if (stream) {
        _mm256_stream_ps(p, v);
    } else {
        _mm256_storeu_ps(p, v);
    }
}

template <int ACT, int TERM, int G, bool SQ>
MSF_AVX2 void grad_units(const Job& job, int64_t begin, int64_t end) {
    const int64_t K = seg_classes(job.shape), N = seg_voxels(job.shape), cap = job.cap;
    const int64_t units_per_item = (N + kUnit - 1) / kUnit;
    [[maybe_unused]] const vf gamma = vset(job.gamma);
    Buffers buf(K, cap);
    [[maybe_unused]] const FocalRows focal(job, buf);
    float* su = buf.su.data();
    float* sh = buf.sh.data();
    for (int64_t u = begin; u < end; ++u) {
        const int64_t b = u / units_per_item;
        const int64_t first = (u % units_per_item) * kUnit;
        const int64_t last = std::min(N, first + kUnit);
        const double* gs = job.grad_sums + b * K * kNumSums;
        for (int64_t v0 = first; v0 < last; v0 += cap) {
            const int64_t len = std::min(cap, last - v0);
            const int64_t len8 = (len + 7) & ~int64_t(7);
            int64_t count = 0, bad = 0;
            job.load_labels(job, b, v0, len, len8, buf, count, bad);
            job.load_x(job, b, v0, len, len8, buf);
            const bool in_place = job.grad_rows(job, b, v0, len, len8, buf);
            tile_softmax<ACT, TERM>(job, len8, buf);
            // Dice upstream u_k = dL/dp_k and, for the softmax, su = sum_k u_k p_k.
            if constexpr (ACT == kActSoftmax) {
                for (int64_t c = 0; c < len8; c += 8) _mm256_storeu_ps(su + c, vset(0.0f));
                for (int64_t k = 0; k < K; ++k) {
                    [[maybe_unused]] const vf gi = vset(static_cast<float>(gs[k * kNumSums + kSumI]));
                    [[maybe_unused]] const vf gp = vset(static_cast<float>(gs[k * kNumSums + kSumP]));
                    [[maybe_unused]] const vf gp2 = vmul(vset(2.0f), gp);
                    const vi kv = _mm256_set1_epi32(K == 1 ? 1 : static_cast<int32_t>(k));
                    const float* ek = buf.e.data() + k * cap;
                    float* gk = buf.gr[k];
                    for (int64_t c = 0; c < len8; c += 8) {
                        vf t, valid;
                        masks(buf.lab.data(), c, kv, t, valid);
                        const vf p = vmul(_mm256_loadu_ps(ek + c), _mm256_loadu_ps(buf.r.data() + c));
                        const vf up = dice_upstream<SQ>(gi, gp, gp2, t, p, valid);
                        _mm256_storeu_ps(gk + c, up);
                        _mm256_storeu_ps(su + c, vadd(_mm256_loadu_ps(su + c), vmul(up, p)));
                    }
                }
            }
            if constexpr (TERM == kTermFocalSoftmax) {
                for (int64_t c = 0; c < len8; c += 8) _mm256_storeu_ps(sh + c, vset(0.0f));
            }
            for (int64_t k = 0; k < K; ++k) {
                [[maybe_unused]] const vf gi = vset(static_cast<float>(gs[k * kNumSums + kSumI]));
                [[maybe_unused]] const vf gp = vset(static_cast<float>(gs[k * kNumSums + kSumP]));
                [[maybe_unused]] const vf gp2 = vmul(vset(2.0f), gp);
                [[maybe_unused]] const vf gtp = vset(static_cast<float>(gs[k * kNumSums + kSumTp]));
                [[maybe_unused]] const vf gtn = vset(static_cast<float>(gs[k * kNumSums + kSumTn]));
                const vi kv = _mm256_set1_epi32(K == 1 ? 1 : static_cast<int32_t>(k));
                const float* xk = buf.xr[k];
                const float* ek = buf.e.data() + k * cap;
                [[maybe_unused]] const bool term_on = TERM == kTermFocalSoftmax && k >= job.term_first;
                float* gk = buf.gr[k];
                const bool stream = in_place && !term_on && aligned32(gk);   // final values: no read back
                for (int64_t c = 0; c < len8; c += 8) {
                    vf t, valid;
                    masks(buf.lab.data(), c, kv, t, valid);
                    const vf x = _mm256_loadu_ps(xk + c);
                    [[maybe_unused]] const SigParts sp = tile_sig_parts<ACT, TERM>(buf, ek, c, x);
                    vf g;
                    if constexpr (ACT == kActSoftmax) {
                        const vf p = vmul(_mm256_loadu_ps(ek + c), _mm256_loadu_ps(buf.r.data() + c));
                        g = vmul(p, vsub(_mm256_loadu_ps(gk + c), _mm256_loadu_ps(su + c)));
                    } else {
                        const vf p = sig_of(sp);
                        const vf up = dice_upstream<SQ>(gi, gp, gp2, t, p, valid);
                        g = vmul(vmul(up, p), vsub(vset(1.0f), p));
                    }
                    if constexpr (TERM == kTermFocalSigmoid) {
                        const SigFocal f = sig_focal<G>(x, t, sp, gamma);
                        const vf sx = sig_of(sp);
                        const vf dx = vmul(f.qg, vsub(vsub(sx, t), vmul(vmul(vmul(gamma, f.s), vsub(vset(1.0f), f.q)),
                                                                      f.bce)));
                        const vf coef = vadd(vmul(gtp, t), vmul(gtn, vsub(valid, t)));
                        g = vadd(g, vmul(coef, dx));
                    } else if constexpr (TERM == kTermFocalSoftmax) {
                        if (term_on) {
                            const vf q = focal.prob(k, c);
                            const vf l = focal.log_prob(x, c);
                            const vf q1 = vsub(vset(1.0f), q);
                            const vf second =
                                vsel(vgt(q1, vset(0.0f)), vmul(vmul(vdpow_gamma<G>(q1, gamma), q), l), vset(0.0f));
                            const vf dl = vadd(vneg(vpow_gamma<G>(q1, gamma)), second);
                            const vf h = vmul(vmul(gtp, t), dl);
                            g = vadd(g, h);
                            _mm256_storeu_ps(sh + c, vadd(_mm256_loadu_ps(sh + c), h));
                        }
                    }
                    store_row(gk + c, g, stream);
                }
            }
            if constexpr (TERM == kTermFocalSoftmax) {
                for (int64_t k = job.term_first; k < K; ++k) {
                    float* gk = buf.gr[k];
                    const bool stream = in_place && aligned32(gk);
                    for (int64_t c = 0; c < len8; c += 8) {
                        const vf q = focal.prob(k, c);
                        store_row(gk + c, vsub(_mm256_loadu_ps(gk + c), vmul(q, _mm256_loadu_ps(sh + c))), stream);
                    }
                }
            }
            if (!in_place) job.store_g(job, b, v0, len, buf);
        }
    }
    _mm_sfence();   // order the streaming stores before the threads join
}

// Covered configurations: float compute, label maps, terms None / focal softmax / focal sigmoid.
bool covered(const SegLossConfig& cfg, DType logits) {
    if (logits != DType::Float32 && logits != DType::Float16 && logits != DType::BFloat16) return false;
    if (cfg.onehot) return false;
    return cfg.term == PixelTerm::None || cfg.term == PixelTerm::FocalSoftmax || cfg.term == PixelTerm::FocalSigmoid;
}

bool make_job(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
              Job& job) {
    if (!simd_active() || !covered(cfg, logits.dtype)) return false;
    job.shape = shape;
    job.cfg = cfg;
    job.logits = logits;
    job.target = target;
    job.cap = tile_size(seg_classes(shape));
    job.term_first = cfg.term_first;
    job.reuse_softmax = cfg.act == DiceAct::Softmax && cfg.term_first == 0;
    job.gamma = static_cast<float>(cfg.gamma);
    dispatch_logits(logits.dtype, [&](auto t_tag, auto) {
        using T = typename decltype(t_tag)::type;
        if constexpr (!std::is_same_v<T, double>) {   // float64 is not covered (checked above)
            job.load_x = &load_x_t<T>;
            job.grad_rows = &grad_rows_t<T>;
            job.store_g = &store_g_t<T>;
        }
    });
    dispatch_target(target.dtype, [&](auto l_tag) {
        using L = typename decltype(l_tag)::type;
        job.load_labels = &load_labels_t<L>;
    });
    return true;
}

// Calls fn(act, term, gamma kind, squared_pred) as compile-time constants.
template <typename Fn>
void with_kernel(const SegLossConfig& cfg, Fn&& fn) {
    auto with_sq = [&](auto act, auto term, auto g) {
        if (cfg.squared_pred) return fn(act, term, g, std::true_type{});
        return fn(act, term, g, std::false_type{});
    };
    auto with_g = [&](auto act, auto term) {
        const double g = cfg.gamma;
        if (term.value == kTermNone || g == 2.0) return with_sq(act, term, std::integral_constant<int, 2>{});
        if (g == 0.0) return with_sq(act, term, std::integral_constant<int, 0>{});
        if (g == 1.0 && term.value == kTermFocalSoftmax) return with_sq(act, term, std::integral_constant<int, 1>{});
        return with_sq(act, term, std::integral_constant<int, -1>{});
    };
    auto with_term = [&](auto act) {
        switch (cfg.term) {
            case PixelTerm::FocalSoftmax: return with_g(act, std::integral_constant<int, kTermFocalSoftmax>{});
            case PixelTerm::FocalSigmoid: return with_g(act, std::integral_constant<int, kTermFocalSigmoid>{});
            default: return with_g(act, std::integral_constant<int, kTermNone>{});
        }
    };
    if (cfg.act == DiceAct::Softmax) return with_term(std::integral_constant<int, kActSoftmax>{});
    return with_term(std::integral_constant<int, kActSigmoid>{});
}

}  // namespace

bool seg_loss_sums_simd(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits,
                        const ArrayArg& target, double* sums, int64_t* counts, int64_t* bad_out) {
    Job job;
    if (!make_job(shape, cfg, logits, target, job)) return false;
    const int64_t B = seg_batch(shape), K = seg_classes(shape), N = seg_voxels(shape);
    const int64_t units_per_item = (N + kUnit - 1) / kUnit;
    const int64_t units = B * units_per_item;
    const int64_t stride = K * kNumSums + 2;
    std::vector<double> partial(static_cast<size_t>(units * stride), 0.0);
    with_kernel(cfg, [&](auto act, auto term, auto g, auto sq) {
        constexpr int A = decltype(act)::value, TM = decltype(term)::value, G = decltype(g)::value;
        constexpr bool SQ = decltype(sq)::value;
        parallel_for(units, unit_grain(K, N), [&](int64_t begin, int64_t end, int) {
            sums_units<A, TM, G, SQ>(job, begin, end, partial.data(), stride);
        });
    });
    *bad_out = reduce_unit_partials(partial, B, K, units_per_item, sums, counts);
    return true;
}

bool seg_loss_grad_simd(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits,
                        const ArrayArg& target, const double* grad_sums, const ArrayArg& grad) {
    Job job;
    if (!make_job(shape, cfg, logits, target, job)) return false;
    job.grad = grad;
    job.grad_sums = grad_sums;
    const int64_t B = seg_batch(shape), K = seg_classes(shape), N = seg_voxels(shape);
    const int64_t units_per_item = (N + kUnit - 1) / kUnit;
    with_kernel(cfg, [&](auto act, auto term, auto g, auto sq) {
        constexpr int A = decltype(act)::value, TM = decltype(term)::value, G = decltype(g)::value;
        constexpr bool SQ = decltype(sq)::value;
        parallel_for(B * units_per_item, unit_grain(K, N), [&](int64_t begin, int64_t end, int) {
            grad_units<A, TM, G, SQ>(job, begin, end);
        });
    });
    return true;
}

namespace {
template <int FN>
MSF_AVX2 void math_simd(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        float in[8] = {0, 0, 0, 0, 0, 0, 0, 0}, out[8];
        const int64_t m = std::min<int64_t>(8, n - i);
        for (int64_t j = 0; j < m; ++j) in[j] = x[i + j];
        const vf v = _mm256_loadu_ps(in);
        vf r;
        if constexpr (FN == 0) r = vexp(v);
        if constexpr (FN == 1) r = vlog(v);
        if constexpr (FN == 2) r = vlog1p01(v);
        if constexpr (FN == 3) r = vsigmoid(v);
        _mm256_storeu_ps(out, r);
        for (int64_t j = 0; j < m; ++j) y[i + j] = out[j];
    }
}
}  // namespace

bool loss_math(LossMathFn fn, bool use_simd, const float* x, float* y, int64_t n) {
    if (use_simd) {
        if (!cpu_has_avx2_fma()) return false;
        switch (fn) {
            case LossMathFn::Exp: math_simd<0>(x, y, n); return true;
            case LossMathFn::Log: math_simd<1>(x, y, n); return true;
            case LossMathFn::Log1p: math_simd<2>(x, y, n); return true;
            case LossMathFn::Sigmoid: math_simd<3>(x, y, n); return true;
            default: return false;
        }
    }
    return loss_math_scalar(fn, x, y, n);
}

#else  // no AVX2 path in this build

bool seg_loss_sums_simd(const Layout&, const SegLossConfig&, const ArrayArg&, const ArrayArg&, double*, int64_t*,
                        int64_t*) {
    return false;
}
bool seg_loss_grad_simd(const Layout&, const SegLossConfig&, const ArrayArg&, const ArrayArg&, const double*,
                        const ArrayArg&) {
    return false;
}
bool loss_math(LossMathFn fn, bool use_simd, const float* x, float* y, int64_t n) {
    if (use_simd) return false;
    return loss_math_scalar(fn, x, y, n);
}

#endif

bool loss_math_scalar(LossMathFn fn, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        switch (fn) {
            case LossMathFn::Exp: y[i] = fast_exp(v); break;
            case LossMathFn::Log: y[i] = fast_log(v); break;
            case LossMathFn::Log1p: y[i] = fast_log1p01(v); break;
            case LossMathFn::Sigmoid: y[i] = sigmoid(v); break;
            default: return false;
        }
    }
    return true;
}

}  // namespace medseg::cpu
