// Per-voxel helpers of the CUDA loss drivers: reading one voxel's logits/targets and its
// activation normalisers. The element math lives in medseg/losses.h (shared with the CPU).
#pragma once

#include <stdexcept>
#include <string>

#include "check.h"
#include "medseg/dispatch.h"
#include "medseg/losses.h"

namespace medseg::cuda::losses_detail {

template <typename T, typename L, typename C>
struct VoxelRef {
    const T* x;        // logits of this voxel, class stride xk
    int64_t xk;
    const L* t;        // target of this voxel (one-hot: class stride tk)
    int64_t tk;

    __device__ inline C logit(int64_t k) const { return load_as<C>(x[k * xk]); }
    __device__ inline C onehot(int64_t k) const { return load_as<C>(t[k * tk]); }
};

template <typename C>
struct VoxelNorm {
    bool valid = false;
    bool bad = false;
    int64_t label = -1;
    C lse = C(0);        // log-sum-exp of the Dice softmax
    C lse_term = C(0);   // log-sum-exp over [term_first, K) for softmax terms
};

template <typename T, typename L, typename C>
__device__ inline VoxelNorm<C> voxel_norm(const SegLossConfig& cfg, int64_t K, const VoxelRef<T, L, C>& r) {
    VoxelNorm<C> n;
    if (cfg.onehot) {
        n.valid = true;
    } else {
        const int64_t y = label_value(r.t[0]);
        const bool ignored = cfg.has_ignore && y == cfg.ignore_index;
        n.bad = !ignored && !label_in_range(y, K);
        n.valid = !ignored && !n.bad;
        n.label = n.valid ? y : -1;
    }
    if (cfg.act == DiceAct::Softmax) {
        C m = r.logit(0);
        for (int64_t k = 1; k < K; ++k) m = loss_max(m, r.logit(k));
        C s = C(0);
        for (int64_t k = 0; k < K; ++k) s += loss_exp(r.logit(k) - m);
        n.lse = m + loss_log(s);
    }
    const bool softmax_term = cfg.term == PixelTerm::FocalSoftmax || cfg.term == PixelTerm::ExpLogSoftmax;
    if (softmax_term) {
        if (cfg.term_first == 0 && cfg.act == DiceAct::Softmax) {
            n.lse_term = n.lse;
        } else {
            C m = r.logit(cfg.term_first);
            for (int64_t k = cfg.term_first + 1; k < K; ++k) m = loss_max(m, r.logit(k));
            C s = C(0);
            for (int64_t k = cfg.term_first; k < K; ++k) s += loss_exp(r.logit(k) - m);
            n.lse_term = m + loss_log(s);
        }
    }
    return n;
}

template <typename T, typename L, typename C>
__device__ inline C voxel_target(const SegLossConfig& cfg, int64_t K, const VoxelRef<T, L, C>& r,
                                 const VoxelNorm<C>& n, int64_t k) {
    if (!n.valid) return C(0);
    if (cfg.onehot) return r.onehot(k);
    return onehot_of<C>(n.label, k, K);
}

template <typename C>
__device__ inline C voxel_prob(const SegLossConfig& cfg, C x, const VoxelNorm<C>& n) {
    return cfg.act == DiceAct::Softmax ? loss_exp(x - n.lse) : sigmoid(x);
}


}  // namespace medseg::cuda::losses_detail
