// CUDA connected-component labeling: voxel union-find with atomicMin (Playne & Hawick, "A new
// algorithm for parallel connected-component labelling on GPUs", IEEE TPDS 2018), where the
// smaller index always becomes the root, followed by the same raster-order numbering as the CPU:
// roots are flagged, an inclusive prefix sum (CUB) ranks them 1..N, and each voxel takes its
// root's rank. The neighbourhood comes from medseg/components.h, shared with the CPU labeler.
#include <cub/device/device_scan.cuh>

#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.h"
#include "components_cuda.h"
#include "medseg/components.h"
#include "medseg/dispatch.h"

namespace medseg::cuda {
namespace {

constexpr int kBlock = 256;

struct Neighbours {
    int count;
    cc::Offset3 d[13];
};

struct Geometry {
    int64_t D, H, W;
    int64_t s0, s1, s2;   // input strides in elements
};

__device__ inline int find_root_device(const int32_t* parent, int32_t i) {
    int32_t p = parent[i];
    while (p != i) {
        i = p;
        p = parent[i];
    }
    return i;
}

// Playne & Hawick union: link the larger root below the smaller with atomicMin, retrying when
// another thread changed that root in between.
__device__ inline void unite_device(int32_t* parent, int32_t a, int32_t b) {
    bool done = false;
    while (!done) {
        a = find_root_device(parent, a);
        b = find_root_device(parent, b);
        if (a < b) {
            const int32_t old = atomicMin(&parent[b], a);
            done = (old == b);
            b = old;
        } else if (b < a) {
            const int32_t old = atomicMin(&parent[a], b);
            done = (old == a);
            a = old;
        } else {
            done = true;
        }
    }
}

template <typename T>
__device__ inline T load_voxel(const T* in, const Geometry& g, int64_t z, int64_t y, int64_t x) {
    return in[z * g.s0 + y * g.s1 + x * g.s2];
}

template <typename T>
__global__ void init_kernel(const T* __restrict__ in, Geometry g, T bg, int32_t* __restrict__ parent, int64_t n) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        const int64_t x = i % g.W, r = i / g.W, y = r % g.H, z = r / g.H;
        parent[i] = load_voxel(in, g, z, y, x) != bg ? static_cast<int32_t>(i) : -1;
    }
}

template <typename T>
__global__ void merge_kernel(const T* __restrict__ in, Geometry g, Neighbours nb, int32_t* parent, int64_t n) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        if (parent[i] < 0) continue;   // background (-1) never changes; foreground stays >= 0
        const int64_t x = i % g.W, r = i / g.W, y = r % g.H, z = r / g.H;
        const T v = load_voxel(in, g, z, y, x);
        for (int k = 0; k < nb.count; ++k) {
            const int64_t zz = z + nb.d[k].dz, yy = y + nb.d[k].dy, xx = x + nb.d[k].dx;
            if (zz < 0 || yy < 0 || yy >= g.H || xx < 0 || xx >= g.W) continue;
            if (load_voxel(in, g, zz, yy, xx) != v) continue;
            const int64_t j = (zz * g.H + yy) * g.W + xx;
            unite_device(parent, static_cast<int32_t>(i), static_cast<int32_t>(j));
        }
    }
}

__global__ void compress_flag_kernel(int32_t* parent, int32_t* rank, int64_t n) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        const int32_t p = parent[i];
        if (p < 0) {
            rank[i] = 0;
            continue;
        }
        const int32_t root = find_root_device(parent, static_cast<int32_t>(i));
        if (root != p) parent[i] = root;   // only shortens paths; concurrent readers stay correct
        rank[i] = (root == static_cast<int32_t>(i)) ? 1 : 0;
    }
}

__global__ void number_kernel(int32_t* parent, const int32_t* __restrict__ rank, int64_t n) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        // After compress_flag_kernel every foreground voxel points straight at its root, so the
        // root's rank is one read away; ranks live in their own array, so overwriting parent
        // here never disturbs another thread's lookup.
        const int32_t p = parent[i];
        parent[i] = p < 0 ? 0 : rank[p];
    }
}

}  // namespace

int64_t label_components(const Layout& layout, const ArrayArg& in, const ArrayArg& out, int connectivity,
                         int64_t background, int64_t max_label, uintptr_t stream_handle) {
    if (layout.ndim != 3) throw std::invalid_argument("label_components expects a 3-D layout");
    if (connectivity != 6 && connectivity != 18 && connectivity != 26)
        throw std::invalid_argument("connectivity must be 6, 18 or 26");
    if (out.dtype != DType::Int32) throw std::invalid_argument("labels output must be int32");
    const int64_t D = layout.shape[0], H = layout.shape[1], W = layout.shape[2];
    const int64_t n = D * H * W;
    if (n == 0) return 0;
    if (n > std::numeric_limits<int32_t>::max())
        throw std::overflow_error("GPU labeling supports at most 2^31 - 1 voxels per array, got " + std::to_string(n));
    if (out.strides.s[2] != 1 || out.strides.s[1] != W || (D > 1 && out.strides.s[0] != H * W))
        throw std::invalid_argument("labels output must be C-contiguous");
    cudaStream_t stream = as_stream(stream_handle);
    int32_t* parent = out.data<int32_t>();
    Neighbours nb{};
    nb.count = cc::backward_neighbours(connectivity, nb.d);
    const Geometry g{D, H, W, in.strides.s[0], in.strides.s[1], in.strides.s[2]};
    const int block = block_size(kBlock);
    const int grid = fixed_grid(n, block, 65535);
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_integral<T>::value) {
            const T* data = in.data<T>();
            const T bg = static_cast<T>(background);
            init_kernel<T><<<grid, block, 0, stream>>>(data, g, bg, parent, n);
            MSF_CUDA_CHECK(cudaGetLastError());
            merge_kernel<T><<<grid, block, 0, stream>>>(data, g, nb, parent, n);
            MSF_CUDA_CHECK(cudaGetLastError());
        } else {
            throw std::invalid_argument("connected components need bool or integer input");
        }
    });
    int32_t* rank = nullptr;
    void* temp = nullptr;
    size_t temp_bytes = 0;
    MSF_CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, temp_bytes, rank, rank, static_cast<int>(n), stream));
    MSF_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&rank), n * sizeof(int32_t) + temp_bytes + 256, stream));
    temp = reinterpret_cast<char*>(rank) + ((n * sizeof(int32_t) + 255) / 256) * 256;
    int32_t count = 0;
    try {
        compress_flag_kernel<<<grid, block, 0, stream>>>(parent, rank, n);
        MSF_CUDA_CHECK(cudaGetLastError());
        MSF_CUDA_CHECK(cub::DeviceScan::InclusiveSum(temp, temp_bytes, rank, rank, static_cast<int>(n), stream));
        number_kernel<<<grid, block, 0, stream>>>(parent, rank, n);
        MSF_CUDA_CHECK(cudaGetLastError());
        MSF_CUDA_CHECK(cudaMemcpyAsync(&count, rank + (n - 1), sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
        MSF_CUDA_CHECK(cudaFreeAsync(rank, stream));
        MSF_CUDA_CHECK(cudaStreamSynchronize(stream));
    } catch (...) {
        cudaFreeAsync(rank, stream);
        throw;
    }
    if (count > max_label)
        throw std::overflow_error("connected components: more than " + std::to_string(max_label) +
                                  " components do not fit the int32 label type");
    return count;
}

}  // namespace medseg::cuda
