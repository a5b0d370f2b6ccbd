// CUDA forward pass of the fused segmentation losses: per-(batch, class) sums in double.
// Each block owns a fixed slice of voxels (the grid depends only on the problem size); per voxel
// the five contributions of every class are reduced across the warp with shuffles, warps add
// into their own shared-memory slots, blocks write partials, and a second kernel adds the
// partials in block order: the result is deterministic and the same on every GPU.
#include <algorithm>

#include "losses_cuda.h"
#include "losses_voxel.cuh"

namespace medseg::cuda {
namespace {

using namespace losses_detail;

constexpr int kMaxSharedBytes = 48 * 1024;
constexpr unsigned kFullWarp = 0xffffffffu;

__device__ inline double warp_sum(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(kFullWarp, v, offset);
    return v;
}

template <typename T, typename L, typename C>
__global__ void sums_kernel(Layout shape, SegLossConfig cfg, ArrayArg logits, ArrayArg target, double* partial) {
    extern __shared__ double smem[];   // [warps][K * kNumSums + 2]
    const int64_t K = seg_classes(shape), N = seg_voxels(shape);
    const int64_t width = K * kNumSums + 2;
    const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    double* mine = smem + warp * width;
    for (int64_t i = lane; i < width; i += 32) mine[i] = 0.0;
    __syncwarp();
    const int64_t b = blockIdx.y;
    const T* xb = reinterpret_cast<const T*>(logits.ptr) + b * batch_stride(logits);
    const L* tb = reinterpret_cast<const L*>(target.ptr) + b * batch_stride(target);
    const bool softmax_term = cfg.term == PixelTerm::FocalSoftmax || cfg.term == PixelTerm::ExpLogSoftmax;
    const C gamma = static_cast<C>(cfg.gamma), eps = static_cast<C>(cfg.explog_eps);
    double count = 0.0, bad = 0.0;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x; base < N; base += step) {
        const int64_t v = base + threadIdx.x;
        const bool inside = v < N;
        const int64_t vv = inside ? v : 0;
        VoxelRef<T, L, C> r{xb + spatial_offset(shape, spatial_strides(logits), vv), class_stride(logits),
                            tb + spatial_offset(shape, spatial_strides(target), vv), class_stride(target)};
        VoxelNorm<C> n = voxel_norm(cfg, K, r);
        n.valid = n.valid && inside;
        count += n.valid ? 1.0 : 0.0;
        bad += (inside && n.bad) ? 1.0 : 0.0;
        const C valid = n.valid ? C(1) : C(0);
        for (int64_t k = 0; k < K; ++k) {
            const C x = r.logit(k);
            const C t = voxel_target(cfg, K, r, n, k);
            const C p = voxel_prob(cfg, x, n) * valid;
            double c[kNumSums];
            c[kSumI] = static_cast<double>(p * t);
            c[kSumP] = static_cast<double>(cfg.squared_pred ? p * p : p);
            c[kSumG] = static_cast<double>(cfg.squared_pred ? t * t : t);
            c[kSumTp] = 0.0;
            c[kSumTn] = 0.0;
            if (cfg.term == PixelTerm::FocalSigmoid) {
                const C fl = sigmoid_focal<C>(x, t, gamma, false).value;
                c[kSumTp] = static_cast<double>(t * fl);
                c[kSumTn] = static_cast<double>((valid - t) * fl);
            } else if (softmax_term && k >= cfg.term_first && t != C(0)) {
                const C l = x - n.lse_term;
                const C val = cfg.term == PixelTerm::FocalSoftmax ? softmax_focal_value<C>(l, loss_exp(l), gamma)
                                                                  : explog_value<C>(l, gamma, eps);
                c[kSumTp] = static_cast<double>(t * val);
            }
            for (int s = 0; s < kNumSums; ++s) {
                const double total = warp_sum(c[s]);
                if (lane == 0) mine[k * kNumSums + s] += total;
            }
        }
    }
    count = warp_sum(count);
    bad = warp_sum(bad);
    if (lane == 0) {
        mine[K * kNumSums] += count;
        mine[K * kNumSums + 1] += bad;
    }
    __syncthreads();
    double* out = partial + (b * gridDim.x + blockIdx.x) * width;
    for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
        double total = 0.0;
        for (int w = 0; w < warps; ++w) total += smem[w * width + i];
        out[i] = total;
    }
}

__global__ void finish_kernel(int64_t batch, int64_t width, int blocks, const double* partial, double* sums,
                              long long* counts, long long* bad) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= batch * width) return;
    const int64_t b = i / width, j = i % width;
    double total = 0.0;
    for (int blk = 0; blk < blocks; ++blk) total += partial[(b * blocks + blk) * width + j];
    const int64_t K5 = width - 2;
    if (j < K5) {
        sums[b * K5 + j] = total;
    } else if (j == K5) {
        counts[b] = static_cast<long long>(total);
    } else if (total > 0.0) {
        atomicAdd(reinterpret_cast<unsigned long long*>(bad), static_cast<unsigned long long>(total));
    }
}

}  // namespace

void seg_loss_sums(const Layout& shape, const SegLossConfig& cfg, const ArrayArg& logits, const ArrayArg& target,
                   uintptr_t sums, uintptr_t counts, uintptr_t bad, uintptr_t stream) {
    const int64_t B = seg_batch(shape), K = seg_classes(shape), N = seg_voxels(shape);
    if (B == 0 || K == 0 || N == 0) return;   // outputs were zero-filled by the caller
    const cudaStream_t s = as_stream(stream);
    const int64_t width = K * kNumSums + 2;
    int warps = static_cast<int>(std::min<int64_t>(8, kMaxSharedBytes / (width * 8)));
    if (warps < 1) throw std::invalid_argument("too many classes for the CUDA loss kernel (at most 1228)");
    warps = block_size(warps * 32) / 32;   // the kernel takes its warp count from blockDim
    const int threads = warps * 32;
    const int blocks = fixed_grid(N, 256, std::max<int64_t>(1, 1024 / std::max<int64_t>(B, 1)));
    double* partial = nullptr;
    MSF_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial), sizeof(double) * B * blocks * width, s));
    const size_t shared = sizeof(double) * warps * width;
    dispatch_logits(logits.dtype, [&](auto t_tag, auto c_tag) {
        using T = typename decltype(t_tag)::type;
        using C = typename decltype(c_tag)::type;
        dispatch_target(target.dtype, [&](auto l_tag) {
            using L = typename decltype(l_tag)::type;
            sums_kernel<T, L, C><<<dim3(blocks, static_cast<unsigned>(B)), threads, shared, s>>>(
                shape, cfg, logits, target, partial);
        });
    });
    MSF_CUDA_CHECK(cudaGetLastError());
    const int64_t total = B * width;
    finish_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, s>>>(
        B, width, blocks, partial, reinterpret_cast<double*>(sums), reinterpret_cast<long long*>(counts),
        reinterpret_cast<long long*>(bad));
    MSF_CUDA_CHECK(cudaGetLastError());
    MSF_CUDA_CHECK(cudaFreeAsync(partial, s));
}

}  // namespace medseg::cuda
