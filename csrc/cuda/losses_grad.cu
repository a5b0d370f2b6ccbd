// CUDA backward pass of the fused segmentation losses: one thread per voxel recomputes the
// activation from the logits and writes d loss / d logits for every class once.
#include "losses_cuda.h"
#include "losses_voxel.cuh"

namespace medseg::cuda {
namespace {

using namespace losses_detail;

template <typename T, typename L, typename C>
__global__ void grad_kernel(Layout shape, SegLossConfig cfg, ArrayArg logits, ArrayArg target,
                            const double* grad_sums, ArrayArg grad) {
    const int64_t K = seg_classes(shape), N = seg_voxels(shape);
    const int64_t b = blockIdx.y;
    const T* xb = reinterpret_cast<const T*>(logits.ptr) + b * batch_stride(logits);
    const L* tb = reinterpret_cast<const L*>(target.ptr) + b * batch_stride(target);
    T* gb = reinterpret_cast<T*>(grad.ptr) + b * batch_stride(grad);
    const double* gs = grad_sums + b * K * kNumSums;
    const bool softmax_term = cfg.term == PixelTerm::FocalSoftmax || cfg.term == PixelTerm::ExpLogSoftmax;
    const C gamma = static_cast<C>(cfg.gamma), eps = static_cast<C>(cfg.explog_eps);
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; v < N; v += step) {
        VoxelRef<T, L, C> r{xb + spatial_offset(shape, spatial_strides(logits), v), class_stride(logits),
                            tb + spatial_offset(shape, spatial_strides(target), v), class_stride(target)};
        const VoxelNorm<C> n = voxel_norm(cfg, K, r);
        T* out = gb + spatial_offset(shape, spatial_strides(grad), v);
        if (!n.valid) {
            for (int64_t k = 0; k < K; ++k) out[k * class_stride(grad)] = store_from<T, C>(C(0));
            continue;
        }
        // Pass 1: sum_c u_c p_c (softmax Dice) and sum_c h_c (softmax pixel term).
        C su = C(0), sh = C(0);
        for (int64_t k = 0; k < K; ++k) {
            const C x = r.logit(k);
            const C t = voxel_target(cfg, K, r, n, k);
            const C p = voxel_prob(cfg, x, n);
            const C u = static_cast<C>(gs[k * kNumSums + kSumI]) * t +
                        static_cast<C>(gs[k * kNumSums + kSumP]) * (cfg.squared_pred ? C(2) * p : C(1));
            su += u * p;
            if (softmax_term && k >= cfg.term_first && t != C(0)) {
                const C l = x - n.lse_term;
                const C d = cfg.term == PixelTerm::FocalSoftmax ? softmax_focal_dl<C>(l, loss_exp(l), gamma)
                                                                : explog_dl<C>(l, gamma, eps);
                sh += static_cast<C>(gs[k * kNumSums + kSumTp]) * t * d;
            }
        }
        // Pass 2: the gradient of every class.
        for (int64_t k = 0; k < K; ++k) {
            const C x = r.logit(k);
            const C t = voxel_target(cfg, K, r, n, k);
            const C p = voxel_prob(cfg, x, n);
            const C u = static_cast<C>(gs[k * kNumSums + kSumI]) * t +
                        static_cast<C>(gs[k * kNumSums + kSumP]) * (cfg.squared_pred ? C(2) * p : C(1));
            C g = cfg.act == DiceAct::Softmax ? p * (u - su) : u * p * (C(1) - p);
            if (cfg.term == PixelTerm::FocalSigmoid) {
                const C coef = static_cast<C>(gs[k * kNumSums + kSumTp]) * t +
                               static_cast<C>(gs[k * kNumSums + kSumTn]) * (C(1) - t);
                g += coef * sigmoid_focal<C>(x, t, gamma, true).dx;
            } else if (softmax_term && k >= cfg.term_first) {
                const C l = x - n.lse_term;
                const C q = loss_exp(l);
                C h = C(0);
                if (t != C(0)) {
                    const C d = cfg.term == PixelTerm::FocalSoftmax ? softmax_focal_dl<C>(l, q, gamma)
                                                                    : explog_dl<C>(l, gamma, eps);
                    h = static_cast<C>(gs[k * kNumSums + kSumTp]) * t * d;
                }
                g += h - q * sh;
            }
            out[k * class_stride(grad)] = store_from<T, C>(g);
        }
    }
}

}  // namespace

void seg_loss_grad(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
                   uintptr_t grad_sums, const ArrayArg& grad, uintptr_t stream) {
    const int64_t B = seg_batch(shape), K = seg_classes(shape), N = seg_voxels(shape);
    if (B == 0 || K == 0 || N == 0) return;
    const cudaStream_t s = as_stream(stream);
    const int threads = block_size(256);
    const int blocks = fixed_grid(N, threads, 4096);
    dispatch_logits(logits.dtype, [&](auto t_tag, auto c_tag) {
        using T = typename decltype(t_tag)::type;
        using C = typename decltype(c_tag)::type;
        dispatch_target(target.dtype, [&](auto l_tag) {
            using L = typename decltype(l_tag)::type;
            grad_kernel<T, L, C><<<dim3(blocks, static_cast<unsigned>(B)), threads, 0, s>>>(
                shape, cfg, logits, target, reinterpret_cast<const double*>(grad_sums), grad);
        });
    });
    MSF_CUDA_CHECK(cudaGetLastError());
}

}  // namespace medseg::cuda
