// Tiles of voxels for the CPU loss drivers: strided gather of logits and targets into
// class-major buffers (so the per-class loops are contiguous and vectorise), the one-hot target
// built from labels, and the Dice activation. Shared by the forward and backward drivers.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "medseg/dispatch.h"
#include "losses_rows.h"
#include "medseg/losses.h"

namespace medseg::cpu::losses_detail {

constexpr int64_t kUnit = 8192;   // voxels per work unit (fixed: reductions do not depend on threads)

// Units per thread at least: a thread gets >= ~64k logits (smaller calls run on the caller's thread).
inline int64_t unit_grain(int64_t classes, int64_t voxels) {
    const int64_t per_unit = std::max<int64_t>(1, classes * std::min(voxels, kUnit));
    return std::max<int64_t>(1, (int64_t(1) << 16) / per_unit);
}

// Per-unit partials are rows of K * kNumSums sums, then the valid-voxel count and the bad-label
// count. Adds them into sums (B x K x kNumSums) and counts (B) in unit order, the same for every
// thread count and for the scalar and the AVX2 drivers; returns the number of bad labels.
inline int64_t reduce_unit_partials(const std::vector<double>& partial, int64_t B, int64_t K, int64_t units_per_item,
                                    double* sums, int64_t* counts) {
    const int64_t stride = K * kNumSums + 2;
    int64_t bad_total = 0;
    for (int64_t b = 0; b < B; ++b) {
        double* out = sums + b * K * kNumSums;
        for (int64_t i = 0; i < K * kNumSums; ++i) out[i] = 0.0;
        double count = 0.0;
        for (int64_t j = 0; j < units_per_item; ++j) {
            const double* acc = partial.data() + (b * units_per_item + j) * stride;
            for (int64_t i = 0; i < K * kNumSums; ++i) out[i] += acc[i];
            count += acc[K * kNumSums];
            bad_total += static_cast<int64_t>(acc[K * kNumSums + 1]);
        }
        counts[b] = static_cast<int64_t>(count);
    }
    return bad_total;
}

inline int64_t tile_size(int64_t classes) { return classes <= 16 ? 256 : 64; }

template <typename C>
struct Tile {
    int64_t classes = 0, cap = 0, len = 0;
    std::vector<C> x, p, t, q, g;                 // class-major [k * cap + v]
    std::vector<C> valid, lse, lse_term;          // per voxel
    std::vector<int64_t> off_x, off_t;            // spatial element offsets
    std::vector<C> label;                         // label as C, -1 when not counted

    Tile(int64_t k, int64_t capacity, bool need_q)
        : classes(k), cap(capacity), x(k * capacity), p(k * capacity), t(k * capacity), q(need_q ? k * capacity : 0),
          g(k * capacity), valid(capacity), lse(capacity), lse_term(capacity), off_x(capacity), off_t(capacity),
          label(capacity) {}
};

// Spatial offsets of voxels [v0, v0 + len) of an array with spatial strides ss.
inline void spatial_offsets(const Layout& shape, const int64_t* ss, int64_t v0, int64_t len, int64_t* out) {
    int64_t i2 = v0 % seg_extent(shape, 2);
    const int64_t r = v0 / seg_extent(shape, 2);
    int64_t i1 = r % seg_extent(shape, 1);
    int64_t i0 = r / seg_extent(shape, 1);
    int64_t off = i0 * ss[0] + i1 * ss[1] + i2 * ss[2];
    for (int64_t v = 0; v < len; ++v) {
        out[v] = off;
        if (++i2 == seg_extent(shape, 2)) {
            i2 = 0;
            if (++i1 == seg_extent(shape, 1)) {
                i1 = 0;
                ++i0;
            }
            off = i0 * ss[0] + i1 * ss[1];
        } else {
            off += ss[2];
        }
    }
}

// True when offsets[0..n) are consecutive elements (the contiguous fast path applies).
inline bool is_unit_run(const int64_t* offsets, int64_t n) {
    for (int64_t v = 1; v < n; ++v)
        if (offsets[v] != offsets[0] + v) return false;
    return true;
}

// Sum of v[0..n) in double with four interleaved accumulators combined in a fixed order
// (deterministic, and four independent dependency chains instead of one).
inline double sum_double(const float* v, int64_t n) { return rows::sum_double(v, n); }

template <typename C>
inline double sum_double(const C* v, int64_t n) {
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

// Loads tile [v0, v0 + len) of batch item b and applies the activations. Returns the number of
// out-of-range labels in the tile.
template <typename C, typename T, typename L>
int64_t load_tile(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
                  int64_t b, int64_t v0, int64_t len, Tile<C>& tile) {
    const int64_t K = seg_classes(shape), cap = tile.cap;
    tile.len = len;
    spatial_offsets(shape, spatial_strides(logits), v0, len, tile.off_x.data());
    spatial_offsets(shape, spatial_strides(target), v0, len, tile.off_t.data());
    const T* xb = reinterpret_cast<const T*>(logits.ptr) + b * batch_stride(logits);
    const L* tb = reinterpret_cast<const L*>(target.ptr) + b * batch_stride(target);
    const bool x_contiguous = is_unit_run(tile.off_x.data(), len);
    for (int64_t k = 0; k < K; ++k) {
        const T* xk = xb + k * class_stride(logits);
        C* dst = tile.x.data() + k * cap;
        if (x_contiguous) {
            const T* src = xk + tile.off_x[0];
            for (int64_t v = 0; v < len; ++v) dst[v] = load_as<C>(src[v]);
        } else {
            for (int64_t v = 0; v < len; ++v) dst[v] = load_as<C>(xk[tile.off_x[v]]);
        }
    }
    int64_t bad = 0;
    if (cfg.onehot) {
        for (int64_t v = 0; v < len; ++v) tile.valid[v] = C(1);
        for (int64_t k = 0; k < K; ++k) {
            const L* tk = tb + k * class_stride(target);
            C* dst = tile.t.data() + k * cap;
            for (int64_t v = 0; v < len; ++v) dst[v] = load_as<C>(tk[tile.off_t[v]]);
        }
    } else {
        const bool t_contiguous = is_unit_run(tile.off_t.data(), len);
        C* lab = tile.label.data();
        for (int64_t v = 0; v < len; ++v) {
            const int64_t y = label_value(t_contiguous ? tb[tile.off_t[0] + v] : tb[tile.off_t[v]]);
            const bool ignored = cfg.has_ignore && y == cfg.ignore_index;
            const bool in_range = label_in_range(y, K);
            bad += (!ignored && !in_range) ? 1 : 0;
            const bool ok = !ignored && in_range;
            lab[v] = ok ? static_cast<C>(y) : C(-1);
            tile.valid[v] = ok ? C(1) : C(0);
        }
        // One-hot rows by float compares (branch-free, vectorised; labels < 2^24 are exact in float).
        for (int64_t k = 0; k < K; ++k) {
            C* dst = tile.t.data() + k * cap;
            if (K == 1) {
                for (int64_t v = 0; v < len; ++v) dst[v] = lab[v] > C(0) ? C(1) : C(0);
            } else {
                const C kf = static_cast<C>(k);
                for (int64_t v = 0; v < len; ++v) dst[v] = lab[v] == kf ? C(1) : C(0);
            }
        }
    }
    // Dice activation p.
    if (cfg.act == DiceAct::Softmax) {
        C* lse = tile.lse.data();
        for (int64_t v = 0; v < len; ++v) lse[v] = tile.x[v];
        for (int64_t k = 1; k < K; ++k) {
            const C* xk = tile.x.data() + k * cap;
            for (int64_t v = 0; v < len; ++v) lse[v] = xk[v] > lse[v] ? xk[v] : lse[v];   // max
        }
        std::vector<C>& s = tile.lse_term;   // scratch: sum of exp
        for (int64_t v = 0; v < len; ++v) s[v] = C(0);
        for (int64_t k = 0; k < K; ++k) {
            const C* xk = tile.x.data() + k * cap;
            C* pk = tile.p.data() + k * cap;
            if constexpr (std::is_same_v<C, float>) {
                rows::softmax_exp(xk, lse, pk, s.data(), len);
            } else {
                for (int64_t v = 0; v < len; ++v) {
                    pk[v] = loss_exp(xk[v] - lse[v]);
                    s[v] += pk[v];
                }
            }
        }
        for (int64_t v = 0; v < len; ++v) {
            const C inv = C(1) / s[v];
            s[v] = inv;
        }
        for (int64_t k = 0; k < K; ++k) {
            C* pk = tile.p.data() + k * cap;
            if constexpr (std::is_same_v<C, float>) {
                rows::scale(pk, s.data(), len);
            } else {
                for (int64_t v = 0; v < len; ++v) pk[v] *= s[v];
            }
        }
        // lse = max + log(sum) = max - log(1/sum)
        for (int64_t v = 0; v < len; ++v) lse[v] = lse[v] - loss_log(s[v]);
    } else {
        for (int64_t k = 0; k < K; ++k) {
            const C* xk = tile.x.data() + k * cap;
            C* pk = tile.p.data() + k * cap;
            if constexpr (std::is_same_v<C, float>) {
                rows::sigmoid(xk, pk, len);
            } else {
                for (int64_t v = 0; v < len; ++v) pk[v] = sigmoid(xk[v]);
            }
        }
    }
    // Softmax terms normalised over [term_first, K): q and its log-normaliser (lse_term).
    const bool softmax_term = cfg.term == PixelTerm::FocalSoftmax || cfg.term == PixelTerm::ExpLogSoftmax;
    if (softmax_term) {
        if (cfg.term_first == 0 && cfg.act == DiceAct::Softmax) {
            for (int64_t v = 0; v < len; ++v) tile.lse_term[v] = tile.lse[v];
            std::copy(tile.p.begin(), tile.p.begin() + K * cap, tile.q.begin());
        } else {
            const int64_t f = cfg.term_first;
            C* m = tile.lse_term.data();
            for (int64_t v = 0; v < len; ++v) m[v] = tile.x[f * cap + v];
            for (int64_t k = f + 1; k < K; ++k) {
                const C* xk = tile.x.data() + k * cap;
                for (int64_t v = 0; v < len; ++v) m[v] = xk[v] > m[v] ? xk[v] : m[v];
            }
            std::vector<C> s(len, C(0));
            for (int64_t k = f; k < K; ++k) {
                const C* xk = tile.x.data() + k * cap;
                C* qk = tile.q.data() + k * cap;
                for (int64_t v = 0; v < len; ++v) {
                    qk[v] = loss_exp(xk[v] - m[v]);
                    s[v] += qk[v];
                }
            }
            for (int64_t v = 0; v < len; ++v) s[v] = C(1) / s[v];
            for (int64_t k = f; k < K; ++k) {
                C* qk = tile.q.data() + k * cap;
                for (int64_t v = 0; v < len; ++v) qk[v] *= s[v];
            }
            for (int64_t v = 0; v < len; ++v) m[v] = m[v] - loss_log(s[v]);
            for (int64_t k = 0; k < f; ++k)
                for (int64_t v = 0; v < len; ++v) tile.q[k * cap + v] = C(0);
        }
    }
    return bad;
}

// Calls fn(std::integral_constant<int, G>) with G = 2 or 0 for those exponents, else -1.
template <typename Fn>
decltype(auto) with_gamma_kind(double gamma, Fn&& fn) {
    if (gamma == 2.0) return fn(std::integral_constant<int, 2>{});
    if (gamma == 0.0) return fn(std::integral_constant<int, 0>{});
    return fn(std::integral_constant<int, -1>{});
}


}  // namespace medseg::cpu::losses_detail
