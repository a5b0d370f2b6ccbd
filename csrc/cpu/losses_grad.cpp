// CPU backward pass of the fused segmentation losses: recompute the activations from the logits
// and write d loss / d logits once, given d loss / d sums.
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
void grad_impl(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
               const double* grad_sums, const ArrayArg& grad) {
    const int64_t B = seg_batch(shape), K = seg_classes(shape), N = seg_voxels(shape);
    const int64_t units_per_item = (N + kUnit - 1) / kUnit;
    const int64_t cap = tile_size(K);
    const bool softmax_term = cfg.term == PixelTerm::FocalSoftmax || cfg.term == PixelTerm::ExpLogSoftmax;
    const C gamma = static_cast<C>(cfg.gamma);
    const C eps = static_cast<C>(cfg.explog_eps);
    const bool hard = !cfg.onehot;   // targets built from labels are exactly 0 or 1

    parallel_for(B * units_per_item, unit_grain(K, N), [&](int64_t begin, int64_t end, int) {
        Tile<C> tile(K, cap, softmax_term);
        std::vector<C> su(cap), sh(cap);
        std::vector<int64_t> off_g(cap);
        for (int64_t u = begin; u < end; ++u) {
            const int64_t b = u / units_per_item;
            const int64_t first = (u % units_per_item) * kUnit;
            const int64_t last = std::min(N, first + kUnit);
            const double* gs = grad_sums + b * K * kNumSums;
            for (int64_t v0 = first; v0 < last; v0 += cap) {
                const int64_t len = std::min(cap, last - v0);
                load_tile<C, T, L>(shape, cfg, logits, target, b, v0, len, tile);
                const C* valid = tile.valid.data();
                // Dice part: u_k = dL/dp_k, then through the activation.
                for (int64_t v = 0; v < len; ++v) su[v] = C(0);
                for (int64_t k = 0; k < K; ++k) {
                    const C gi = static_cast<C>(gs[k * kNumSums + kSumI]);
                    const C gp = static_cast<C>(gs[k * kNumSums + kSumP]);
                    const C* pk = tile.p.data() + k * cap;
                    const C* tk = tile.t.data() + k * cap;
                    C* gk = tile.g.data() + k * cap;
                    if constexpr (std::is_same_v<C, float>) {
                        rows::dice_upstream(pk, tk, valid, gk, su.data(), len, gi, gp, cfg.squared_pred,
                                            cfg.act == DiceAct::Softmax);
                        continue;
                    }
                    if (cfg.squared_pred) {
                        for (int64_t v = 0; v < len; ++v) gk[v] = (gi * tk[v] + C(2) * gp * pk[v]) * valid[v];
                    } else {
                        for (int64_t v = 0; v < len; ++v) gk[v] = gi * tk[v] + gp * valid[v];
                    }
                    if (cfg.act == DiceAct::Softmax) {
                        for (int64_t v = 0; v < len; ++v) su[v] += gk[v] * pk[v];
                    }
                }
                for (int64_t k = 0; k < K; ++k) {
                    const C* pk = tile.p.data() + k * cap;
                    C* gk = tile.g.data() + k * cap;
                    if constexpr (std::is_same_v<C, float>) {
                        rows::dice_through_activation(pk, gk, su.data(), len, cfg.act == DiceAct::Softmax);
                    } else if (cfg.act == DiceAct::Softmax) {
                        for (int64_t v = 0; v < len; ++v) gk[v] = pk[v] * (gk[v] - su[v]);
                    } else {
                        for (int64_t v = 0; v < len; ++v) gk[v] = gk[v] * pk[v] * (C(1) - pk[v]);
                    }
                }
                // Pixel term.
                if (cfg.term == PixelTerm::FocalSigmoid) {
                    for (int64_t k = 0; k < K; ++k) {
                        const C gtp = static_cast<C>(gs[k * kNumSums + kSumTp]);
                        const C gtn = static_cast<C>(gs[k * kNumSums + kSumTn]);
                        const C* xk = tile.x.data() + k * cap;
                        const C* tk = tile.t.data() + k * cap;
                        C* gk = tile.g.data() + k * cap;
                        if constexpr (std::is_same_v<C, float>) {
                            rows::sigmoid_focal_bwd(xk, tk, valid, gk, len, gamma, gtp, gtn, hard);
                        } else {
                            with_gamma_kind(cfg.gamma, [&](auto g_kind) {
                                constexpr int G = decltype(g_kind)::value;
                                if (hard) {
                                    for (int64_t v = 0; v < len; ++v) {
                                        const C coef = gtp * tk[v] + gtn * (valid[v] - tk[v]);
                                        gk[v] += coef * sigmoid_focal<C, G>(xk[v], tk[v], gamma, true, true).dx;
                                    }
                                } else {
                                    for (int64_t v = 0; v < len; ++v) {
                                        const C coef = gtp * tk[v] + gtn * (valid[v] - tk[v]);
                                        gk[v] += coef * sigmoid_focal<C, G>(xk[v], tk[v], gamma, true, false).dx;
                                    }
                                }
                            });
                        }
                    }
                } else if (softmax_term) {
                    // h_k = dL/dTp_k * t_k * dterm/dl_k; dL/dx_k += h_k - q_k * sum_c h_c.
                    const C* lse = tile.lse_term.data();
                    for (int64_t v = 0; v < len; ++v) sh[v] = C(0);
                    for (int64_t k = cfg.term_first; k < K; ++k) {
                        const C gtp = static_cast<C>(gs[k * kNumSums + kSumTp]);
                        const C* xk = tile.x.data() + k * cap;
                        const C* tk = tile.t.data() + k * cap;
                        const C* qk = tile.q.data() + k * cap;
                        C* gk = tile.g.data() + k * cap;
                        if (cfg.term == PixelTerm::FocalSoftmax) {
                            if constexpr (std::is_same_v<C, float>) {
                                rows::softmax_focal_bwd(xk, lse, qk, tk, gk, sh.data(), len, gamma, gtp);
                            } else {
                                for (int64_t v = 0; v < len; ++v) {
                                    const C h = gtp * tk[v] * softmax_focal_dl<C>(xk[v] - lse[v], qk[v], gamma);
                                    gk[v] += h;
                                    sh[v] += h;
                                }
                            }
                        } else {
                            for (int64_t v = 0; v < len; ++v) {
                                const C h = gtp * tk[v] * explog_dl<C>(xk[v] - lse[v], gamma, eps);
                                gk[v] += h;
                                sh[v] += h;
                            }
                        }
                    }
                    for (int64_t k = cfg.term_first; k < K; ++k) {
                        const C* qk = tile.q.data() + k * cap;
                        C* gk = tile.g.data() + k * cap;
                        for (int64_t v = 0; v < len; ++v) gk[v] -= qk[v] * sh[v];
                    }
                }
                // Store.
                spatial_offsets(shape, spatial_strides(grad), v0, len, off_g.data());
                T* out = reinterpret_cast<T*>(grad.ptr) + b * batch_stride(grad);
                const bool contiguous = is_unit_run(off_g.data(), len);
                for (int64_t k = 0; k < K; ++k) {
                    const C* gk = tile.g.data() + k * cap;
                    T* ok = out + k * class_stride(grad);
                    if (contiguous) {
                        T* dst = ok + off_g[0];
                        for (int64_t v = 0; v < len; ++v) dst[v] = store_from<T, C>(gk[v]);
                    } else {
                        for (int64_t v = 0; v < len; ++v) ok[off_g[v]] = store_from<T, C>(gk[v]);
                    }
                }
            }
        }
    });
}

}  // namespace

void seg_loss_grad(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
                   const double* grad_sums, const ArrayArg& grad) {
    if (seg_batch(shape) == 0 || seg_classes(shape) == 0 || seg_voxels(shape) == 0) return;
    if (seg_loss_grad_simd(shape, cfg, logits, target, grad_sums, grad)) return;
    dispatch_logits(logits.dtype, [&](auto t_tag, auto c_tag) {
        using T = typename decltype(t_tag)::type;
        using C = typename decltype(c_tag)::type;
        dispatch_target(target.dtype, [&](auto l_tag) {
            using L = typename decltype(l_tag)::type;
            grad_impl<T, C, L>(shape, cfg, logits, target, grad_sums, grad);
        });
    });
}

}  // namespace medseg::cpu
