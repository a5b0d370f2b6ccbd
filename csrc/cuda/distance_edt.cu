// CUDA exact EDT: the same passes as the CPU driver (csrc/cpu/distance_cpu.h) with one thread per
// line and the per-line envelope of medseg/distance.h. On axis 0 and the middle axes, neighbouring
// threads own neighbouring lines, so every load and store of a warp is coalesced; envelope scratch
// (v, z) is interleaved by line for the same reason. Passes ping-pong between `out` and a
// temporary buffer; "no zero anywhere" is detected on the device, so the host never waits.
#include <algorithm>
#include <stdexcept>
#include <utility>

#include "check.h"
#include "distance_cuda.h"
#include "medseg/dispatch.h"
#include "medseg/distance.h"

namespace medseg::cuda {
namespace {

constexpr int kBlock = 256;

struct Shape {
    int ndim;
    int64_t shape[kMaxDims];
    double spacing[kMaxDims];
};

inline int64_t prod(const Shape& sh, int from, int to) {
    int64_t n = 1;
    for (int a = from; a < to; ++a) n *= sh.shape[a];
    return n;
}

// Axis 0: thread j walks the column (i, j) forwards and backwards.
template <typename S, typename T>
__global__ void first_axis_kernel(Shape sh, const S* __restrict__ mask, Strides ms, T* __restrict__ out, int64_t inner,
                                  bool take_sqrt, int* any_site) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= inner) return;
    int64_t offset = 0, rem = j;
    for (int a = sh.ndim - 1; a >= 1; --a) {
        offset += (rem % sh.shape[a]) * ms.s[a];
        rem /= sh.shape[a];
    }
    const int64_t n0 = sh.shape[0];
    const T inf = edt_inf<T>();
    T count = inf;
    bool found = false;
    for (int64_t i = 0; i < n0; ++i) {
        const bool site = load_as<double>(mask[offset + i * ms.s[0]]) == 0.0;
        found |= site;
        count = edt_sweep_step<T>(site, count);
        out[i * inner + j] = count;
    }
    if (found) atomicOr(any_site, 1);
    const T s = static_cast<T>(sh.spacing[0]);
    T next = inf;
    for (int64_t i = n0 - 1; i >= 0; --i) {
        const T c = min(out[i * inner + j], next + T(1));
        next = c;
        out[i * inner + j] = edt_first_axis_value<T>(c, s, take_sqrt);
    }
}

// Axis a (n elements, `inner` elements apart): thread = line (o, j).
template <typename T>
__global__ void envelope_kernel(const T* __restrict__ in, T* __restrict__ out, int64_t outer, int64_t n,
                                int64_t inner, T s, int32_t* v, T* z, bool take_sqrt) {
    const int64_t line = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t lines = outer * inner;
    if (line >= lines) return;
    const int64_t o = line / inner, j = line % inner;
    const int64_t base = o * n * inner + j;
    edt_envelope_line<T>(in + base, inner, n, s, out + base, inner, v + line, z + line, lines, take_sqrt);
}

// No zero anywhere (flag unset): distance to the virtual zero at index -1 along `axis`.
template <typename T>
__global__ void fill_without_sites_kernel(Shape sh, T* out, int64_t total, bool squared, int axis,
                                          const int* any_site) {
    if (*any_site) return;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
        int64_t rem = i;
        T value = 0;
        for (int a = sh.ndim - 1; a >= 0; --a) {
            const int64_t idx = rem % sh.shape[a];
            rem /= sh.shape[a];
            const T t = static_cast<T>(idx + (a == axis ? 1 : 0)) * static_cast<T>(sh.spacing[a]);
            value += t * t;
        }
        out[i] = squared ? value : sqrt(value);
    }
}

inline unsigned blocks_for(int64_t n, int block) { return static_cast<unsigned>((n + block - 1) / block); }

template <typename T>
void run(const Shape& sh, const ArrayArg& mask, T* out, bool squared, int virtual_axis, cudaStream_t st) {
    const int64_t total = prod(sh, 0, sh.ndim);
    const int64_t inner0 = prod(sh, 1, sh.ndim);
    const int block = block_size(kBlock);
    int* flag = nullptr;
    MSF_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&flag), sizeof(int), st));
    MSF_CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), st));
    dispatch_all(mask.dtype, [&](auto tag) {
        using S = typename decltype(tag)::type;
        first_axis_kernel<S, T><<<blocks_for(inner0, block), block, 0, st>>>(sh, mask.data<S>(), mask.strides, out, inner0,
                                                                      !squared && sh.ndim == 1, flag);
    });
    MSF_CUDA_CHECK(cudaGetLastError());
    // Axes with more than one element after the first, the last one always (it takes the root).
    std::vector<int> axes;
    for (int a = 1; a < sh.ndim; ++a)
        if (sh.shape[a] > 1 || a == sh.ndim - 1) axes.push_back(a);
    if (!axes.empty()) {
        T *tmp = nullptr, *z = nullptr;
        int32_t* v = nullptr;
        MSF_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&tmp), total * sizeof(T), st));
        MSF_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&v), total * sizeof(int32_t), st));
        int64_t max_lines = 0;
        for (int a : axes) max_lines = std::max(max_lines, total / sh.shape[a]);
        MSF_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&z), (total + max_lines) * sizeof(T), st));
        T* src = out;
        T* dst = tmp;
        for (int a : axes) {
            const int64_t n = sh.shape[a], outer = prod(sh, 0, a), inner = prod(sh, a + 1, sh.ndim);
            const bool last = a == sh.ndim - 1;
            envelope_kernel<T><<<blocks_for(outer * inner, block), block, 0, st>>>(
                src, dst, outer, n, inner, static_cast<T>(sh.spacing[a]), v, z, last && !squared);
            MSF_CUDA_CHECK(cudaGetLastError());
            std::swap(src, dst);
        }
        if (src != out) MSF_CUDA_CHECK(cudaMemcpyAsync(out, src, total * sizeof(T), cudaMemcpyDeviceToDevice, st));
        MSF_CUDA_CHECK(cudaFreeAsync(tmp, st));
        MSF_CUDA_CHECK(cudaFreeAsync(v, st));
        MSF_CUDA_CHECK(cudaFreeAsync(z, st));
    }
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(blocks_for(total, block), 4096));
    fill_without_sites_kernel<T><<<grid, block, 0, st>>>(sh, out, total, squared, virtual_axis, flag);
    MSF_CUDA_CHECK(cudaGetLastError());
    MSF_CUDA_CHECK(cudaFreeAsync(flag, st));
}

}  // namespace

void distance_transform(const Layout& layout, const ArrayArg& mask, const ArrayArg& out,
                        const std::vector<double>& spacing, bool squared, int virtual_axis, uintptr_t stream) {
    if (static_cast<int>(spacing.size()) != layout.ndim) throw std::invalid_argument("spacing length != ndim");
    Shape sh{};
    sh.ndim = layout.ndim;
    for (int a = 0; a < layout.ndim; ++a) {
        sh.shape[a] = layout.shape[a];
        sh.spacing[a] = spacing[a];
    }
    if (sh.ndim == 0 || prod(sh, 0, sh.ndim) == 0) return;
    const cudaStream_t st = as_stream(stream);
    if (out.dtype == DType::Float32) run<float>(sh, mask, out.data<float>(), squared, virtual_axis, st);
    else if (out.dtype == DType::Float64) run<double>(sh, mask, out.data<double>(), squared, virtual_axis, st);
    else throw std::invalid_argument("distance_transform output must be float32 or float64");
}

}  // namespace medseg::cuda
