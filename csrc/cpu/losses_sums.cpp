// CPU forward pass of the fused segmentation losses: per-(batch, class) sums in double.
// Branch-free selects on floats (clamps in fast_exp, |x|, sigmoid) are if-converted, and the
// element loops vectorised, only without trapping-math; no code here relies on FP exceptions.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <vector>

#include "losses_cpu.h"
#include "losses_tile.h"
#include "medseg/parallel.h"

namespace medseg::cpu {
namespace {

using namespace losses_detail;

template <typename T, typename C, typename L>
int64_t sums_impl(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
                  double* sums, int64_t* counts) {
    const int64_t B = seg_batch(shape), K = seg_classes(shape), N = seg_voxels(shape);
    const int64_t units_per_item = (N + kUnit - 1) / kUnit;
    const int64_t units = B * units_per_item;
    const int64_t stride = K * kNumSums + 2;   // sums, count, bad
    std::vector<double> partial(static_cast<size_t>(units * stride), 0.0);
    const int64_t cap = tile_size(K);
    const bool need_q = cfg.term == PixelTerm::FocalSoftmax || cfg.term == PixelTerm::ExpLogSoftmax;
    const C gamma = static_cast<C>(cfg.gamma);
    const C eps = static_cast<C>(cfg.explog_eps);
    const bool hard = !cfg.onehot;   // targets built from labels are exactly 0 or 1

    parallel_for(units, unit_grain(K, N), [&](int64_t begin, int64_t end, int) {
        Tile<C> tile(K, cap, need_q);
        std::vector<C> si_buf(cap), sp_buf(cap), sg_buf(cap);
        for (int64_t u = begin; u < end; ++u) {
            const int64_t b = u / units_per_item;
            const int64_t first = (u % units_per_item) * kUnit;
            const int64_t last = std::min(N, first + kUnit);
            double* acc = partial.data() + u * stride;
            int64_t bad = 0;
            double count = 0.0;
            for (int64_t v0 = first; v0 < last; v0 += cap) {
                const int64_t len = std::min(cap, last - v0);
                bad += load_tile<C, T, L>(shape, cfg, logits, target, b, v0, len, tile);
                for (int64_t v = 0; v < len; ++v) count += static_cast<double>(tile.valid[v]);
                const C* valid = tile.valid.data();
                const C* lse = tile.lse_term.data();
                for (int64_t k = 0; k < K; ++k) {
                    const C* pk = tile.p.data() + k * cap;
                    const C* tk = tile.t.data() + k * cap;
                    const C* xk = tile.x.data() + k * cap;
                    // Elementwise values into scratch rows (vectorisable), then fixed-order double sums.
                    if constexpr (std::is_same_v<C, float>) {
                        rows::dice_terms(pk, tk, valid, si_buf.data(), sp_buf.data(), sg_buf.data(), len,
                                         cfg.squared_pred);
                    } else if (cfg.squared_pred) {
                        for (int64_t v = 0; v < len; ++v) {
                            const C pv = pk[v] * valid[v];
                            si_buf[v] = pv * tk[v];
                            sp_buf[v] = pv * pv;
                            sg_buf[v] = tk[v] * tk[v];
                        }
                    } else {
                        for (int64_t v = 0; v < len; ++v) {
                            si_buf[v] = pk[v] * tk[v];
                            sp_buf[v] = pk[v] * valid[v];
                        }
                    }
                    double* a = acc + k * kNumSums;
                    a[kSumI] += sum_double(si_buf.data(), len);
                    a[kSumP] += sum_double(sp_buf.data(), len);
                    a[kSumG] += sum_double(cfg.squared_pred ? sg_buf.data() : tk, len);
                    if (cfg.term == PixelTerm::FocalSigmoid) {
                        if constexpr (std::is_same_v<C, float>) {
                            rows::sigmoid_focal_fwd(xk, tk, valid, si_buf.data(), sp_buf.data(), len, gamma, hard);
                        } else {
                            with_gamma_kind(cfg.gamma, [&](auto g_kind) {
                                constexpr int G = decltype(g_kind)::value;
                                if (hard) {
                                    for (int64_t v = 0; v < len; ++v) {
                                        const C fl = sigmoid_focal<C, G>(xk[v], tk[v], gamma, false, true).value;
                                        si_buf[v] = tk[v] * fl;
                                        sp_buf[v] = (valid[v] - tk[v]) * fl;
                                    }
                                } else {
                                    for (int64_t v = 0; v < len; ++v) {
                                        const C fl = sigmoid_focal<C, G>(xk[v], tk[v], gamma, false, false).value;
                                        si_buf[v] = tk[v] * fl;
                                        sp_buf[v] = (valid[v] - tk[v]) * fl;
                                    }
                                }
                            });
                        }
                        a[kSumTp] += sum_double(si_buf.data(), len);
                        a[kSumTn] += sum_double(sp_buf.data(), len);
                    } else if (need_q && k >= cfg.term_first) {
                        const C* qk = tile.q.data() + k * cap;
                        if (cfg.term == PixelTerm::FocalSoftmax) {
                            if constexpr (std::is_same_v<C, float>) {
                                rows::softmax_focal_fwd(xk, lse, qk, tk, si_buf.data(), len, gamma);
                            } else {
                                for (int64_t v = 0; v < len; ++v)
                                    si_buf[v] = tk[v] * softmax_focal_value<C>(xk[v] - lse[v], qk[v], gamma);
                            }
                        } else {
                            for (int64_t v = 0; v < len; ++v)
                                si_buf[v] = tk[v] * explog_value<C>(xk[v] - lse[v], gamma, eps);
                        }
                        a[kSumTp] += sum_double(si_buf.data(), len);
                    }
                }
            }
            acc[K * kNumSums] = count;
            acc[K * kNumSums + 1] = static_cast<double>(bad);
        }
    });

    return reduce_unit_partials(partial, B, K, units_per_item, sums, counts);
}

}  // namespace

int64_t seg_loss_sums(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits,
                      const ArrayArg& target, double* sums, int64_t* counts) {
    for (int64_t i = 0; i < seg_batch(shape) * seg_classes(shape) * kNumSums; ++i) sums[i] = 0.0;
    for (int64_t b = 0; b < seg_batch(shape); ++b) counts[b] = 0;
    if (seg_batch(shape) == 0 || seg_classes(shape) == 0 || seg_voxels(shape) == 0) return 0;
    int64_t bad = 0;
    if (seg_loss_sums_simd(shape, cfg, logits, target, sums, counts, &bad)) return bad;
    return dispatch_logits(logits.dtype, [&](auto t_tag, auto c_tag) {
        using T = typename decltype(t_tag)::type;
        using C = typename decltype(c_tag)::type;
        return dispatch_target(target.dtype, [&](auto l_tag) {
            using L = typename decltype(l_tag)::type;
            return sums_impl<T, C, L>(shape, cfg, logits, target, sums, counts);
        });
    });
}

}  // namespace medseg::cpu
