// CUDA intensity statistics: histogram (<= 16-bit), moments, radix-select order statistics.
// Each returns host values, so each ends with one stream synchronisation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "check.h"
#include "intensity_cuda.h"
#include "medseg/dispatch.h"

namespace medseg::cuda {
namespace {

constexpr int kBlock = 256;
constexpr unsigned kFullWarp = 0xffffffffu;
constexpr int kMaxGroups = 64;

struct DeviceBuffer {
    void* ptr = nullptr;
    cudaStream_t stream;
    DeviceBuffer(size_t bytes, cudaStream_t s) : stream(s) { MSF_CUDA_CHECK(cudaMallocAsync(&ptr, bytes, s)); }
    ~DeviceBuffer() { cudaFreeAsync(ptr, stream); }
    template <typename U> U* as() const { return static_cast<U*>(ptr); }
};

template <typename T>
__device__ inline bool selected(const Layout& layout, const T* in, const Strides& in_s, const uint8_t* mask,
                                const Strides& mask_s, int64_t i, int64_t n, T& value) {
    if (i >= n) return false;
    if (mask != nullptr && mask[mask_s.offset(layout, i)] == 0) return false;
    value = in[in_s.offset(layout, i)];
    return true;
}

// Warp-aggregated increments: lanes holding the same bin add once (CT air is one value).
__device__ inline void aggregated_add(unsigned long long* hist, unsigned bin, bool valid) {
    const unsigned key = valid ? bin : 0xffffffffu;
    const unsigned peers = __match_any_sync(kFullWarp, key);
    const int leader = __ffs(peers) - 1;
    if (valid && static_cast<int>(threadIdx.x % 32) == leader)
        atomicAdd(hist + bin, static_cast<unsigned long long>(__popc(peers)));
}

template <typename T>
__global__ void histogram_kernel(Layout layout, const T* in, Strides in_s, const uint8_t* mask, Strides mask_s,
                                 int64_t n, unsigned long long* hist) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    // All lanes of a warp run the same number of iterations so __match_any_sync sees a full warp.
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x; base < n; base += step) {
        T v{};
        const bool valid = selected(layout, in, in_s, mask, mask_s, base + threadIdx.x, n, v);
        aggregated_add(hist, valid ? static_cast<unsigned>(SortKey<T>::of(v)) : 0u, valid);
    }
}

struct Partial {
    double count, nan_count, mean, m2, min, max;
};

__device__ inline void merge(Partial& a, const Partial& b) {
    a.nan_count += b.nan_count;
    if (b.count == 0) return;
    if (a.count == 0) {
        const double nan_count = a.nan_count;
        a = b;
        a.nan_count = nan_count;
        return;
    }
    const double n = a.count + b.count;
    const double delta = b.mean - a.mean;
    a.mean += delta * b.count / n;
    a.m2 += b.m2 + delta * delta * a.count * b.count / n;
    a.count = n;
    a.min = fmin(a.min, b.min);
    a.max = fmax(a.max, b.max);
}

template <typename T>
__global__ void moments_kernel(Layout layout, const T* in, Strides in_s, const uint8_t* mask, Strides mask_s,
                               int64_t n, double lo, double hi, Partial* partials) {
    __shared__ Partial shared[kBlock];
    Partial p{0, 0, 0, 0, INFINITY, -INFINITY};
    double shift = 0.0, s1 = 0.0, s2 = 0.0;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        T v{};
        if (!selected(layout, in, in_s, mask, mask_s, i, n, v)) continue;
        double x = load_as<double>(v);
        if (x != x) {
            p.nan_count += 1;
            continue;
        }
        x = x < lo ? lo : (x > hi ? hi : x);
        if (p.count == 0) shift = x;
        const double d = x - shift;
        p.count += 1;
        s1 += d;
        s2 += d * d;
        p.min = fmin(p.min, x);
        p.max = fmax(p.max, x);
    }
    if (p.count > 0) {
        p.mean = shift + s1 / p.count;
        p.m2 = fmax(0.0, s2 - s1 * s1 / p.count);
    }
    shared[threadIdx.x] = p;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {  // fixed tree: deterministic
        if (static_cast<int>(threadIdx.x) < half) merge(shared[threadIdx.x], shared[threadIdx.x + half]);
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[blockIdx.x] = shared[0];
}

template <typename T>
__global__ void digit_histogram_kernel(Layout layout, const T* in, Strides in_s, const uint8_t* mask,
                                       Strides mask_s, int64_t n, int digit_shift, int known_bits,
                                       const unsigned long long* groups, int n_groups, unsigned long long* hist) {
    using Key = typename SortKey<T>::Key;
    constexpr int kKeyBits = 8 * sizeof(Key);
    constexpr unsigned kDigitMask = kKeyBits < 16 ? ((1u << kKeyBits) - 1u) : 0xffffu;
    constexpr unsigned kBins = kDigitMask + 1u;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x; base < n; base += step) {
        T v{};
        bool valid = selected(layout, in, in_s, mask, mask_s, base + threadIdx.x, n, v) && !is_nan_value(v);
        unsigned bin = 0;
        if (valid) {
            const Key k = SortKey<T>::of(v);
            const unsigned digit = static_cast<unsigned>(k >> digit_shift) & kDigitMask;
            if (known_bits == 0) {
                bin = digit;
            } else {
                const unsigned long long known = static_cast<unsigned long long>(k >> (kKeyBits - known_bits));
                int g = 0;
                while (g < n_groups && groups[g] != known) ++g;
                valid = g < n_groups;
                bin = static_cast<unsigned>(g) * kBins + digit;
            }
        }
        aggregated_add(hist, bin, valid);
    }
}

template <typename T>
std::vector<uint64_t> histogram_impl(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, cudaStream_t s) {
    using Key = typename SortKey<T>::Key;
    const size_t bins = size_t(1) << (8 * sizeof(Key));
    const int64_t n = layout_size(layout);
    std::vector<uint64_t> host(bins, 0);
    DeviceBuffer hist(bins * sizeof(unsigned long long), s);
    MSF_CUDA_CHECK(cudaMemsetAsync(hist.ptr, 0, bins * sizeof(unsigned long long), s));
    if (n > 0) {
        const int block = block_size(kBlock);
        histogram_kernel<T><<<fixed_grid(n, block), block, 0, s>>>(
            layout, in.data<T>(), in.strides, mask.present() ? mask.data<uint8_t>() : nullptr, mask.strides, n,
            hist.as<unsigned long long>());
        MSF_CUDA_CHECK(cudaGetLastError());
    }
    MSF_CUDA_CHECK(cudaMemcpyAsync(host.data(), hist.ptr, bins * sizeof(uint64_t), cudaMemcpyDeviceToHost, s));
    MSF_CUDA_CHECK(cudaStreamSynchronize(s));
    return host;
}

template <typename T>
Moments moments_impl(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, double lo, double hi,
                     cudaStream_t s) {
    const int64_t n = layout_size(layout);
    const int block = block_size(kBlock);   // <= kBlock, a power of two: the tree reduction
    const int grid = fixed_grid(n, block, 1024);
    std::vector<Partial> host(grid);
    DeviceBuffer partials(grid * sizeof(Partial), s);
    moments_kernel<T><<<grid, block, 0, s>>>(layout, in.data<T>(), in.strides,
                                               mask.present() ? mask.data<uint8_t>() : nullptr, mask.strides, n, lo,
                                               hi, partials.as<Partial>());
    MSF_CUDA_CHECK(cudaGetLastError());
    MSF_CUDA_CHECK(cudaMemcpyAsync(host.data(), partials.ptr, grid * sizeof(Partial), cudaMemcpyDeviceToHost, s));
    MSF_CUDA_CHECK(cudaStreamSynchronize(s));
    Moments total;
    total.min = std::numeric_limits<double>::infinity();
    total.max = -std::numeric_limits<double>::infinity();
    for (const Partial& p : host) {
        total.nan_count += static_cast<int64_t>(p.nan_count);
        if (p.count == 0) continue;
        if (total.count == 0) {
            total.mean = p.mean;
            total.m2 = p.m2;
        } else {
            const double na = static_cast<double>(total.count), nn = na + p.count;
            const double delta = p.mean - total.mean;
            total.mean += delta * p.count / nn;
            total.m2 += p.m2 + delta * delta * na * p.count / nn;
        }
        total.count += static_cast<int64_t>(p.count);
        total.min = std::min(total.min, p.min);
        total.max = std::max(total.max, p.max);
    }
    if (total.count == 0) total.min = total.max = std::numeric_limits<double>::quiet_NaN();
    return total;
}

template <typename T>
void order_statistics_impl(const Layout& layout, const ArrayArg& in, const ArrayArg& mask,
                           const std::vector<int64_t>& ranks, T* out, cudaStream_t s) {
    using Key = typename SortKey<T>::Key;
    constexpr int kKeyBits = 8 * sizeof(Key);
    constexpr int kDigitBits = kKeyBits < 16 ? kKeyBits : 16;
    constexpr int kPasses = kKeyBits / kDigitBits;
    constexpr size_t kBins = size_t(1) << kDigitBits;
    const int64_t n = layout_size(layout);
    if (ranks.size() > static_cast<size_t>(kMaxGroups)) throw std::invalid_argument("too many order statistics");
    std::vector<unsigned long long> prefix(ranks.size(), 0);
    std::vector<int64_t> remaining(ranks);
    DeviceBuffer groups_dev(kMaxGroups * sizeof(unsigned long long), s);
    DeviceBuffer hist_dev(kMaxGroups * kBins * sizeof(unsigned long long), s);
    for (int pass = 0; pass < kPasses; ++pass) {
        std::vector<unsigned long long> groups(prefix);
        std::sort(groups.begin(), groups.end());
        groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
        const size_t hist_bytes = groups.size() * kBins * sizeof(unsigned long long);
        MSF_CUDA_CHECK(cudaMemcpyAsync(groups_dev.ptr, groups.data(), groups.size() * sizeof(unsigned long long),
                                       cudaMemcpyHostToDevice, s));
        MSF_CUDA_CHECK(cudaMemsetAsync(hist_dev.ptr, 0, hist_bytes, s));
        if (n > 0) {
            const int block = block_size(kBlock);
            digit_histogram_kernel<T><<<fixed_grid(n, block), block, 0, s>>>(
                layout, in.data<T>(), in.strides, mask.present() ? mask.data<uint8_t>() : nullptr, mask.strides, n,
                kKeyBits - kDigitBits * (pass + 1), kDigitBits * pass, groups_dev.as<unsigned long long>(),
                static_cast<int>(groups.size()), hist_dev.as<unsigned long long>());
            MSF_CUDA_CHECK(cudaGetLastError());
        }
        std::vector<uint64_t> hist(groups.size() * kBins);
        MSF_CUDA_CHECK(cudaMemcpyAsync(hist.data(), hist_dev.ptr, hist_bytes, cudaMemcpyDeviceToHost, s));
        MSF_CUDA_CHECK(cudaStreamSynchronize(s));
        for (size_t r = 0; r < ranks.size(); ++r) {
            const size_t g = static_cast<size_t>(std::lower_bound(groups.begin(), groups.end(), prefix[r]) - groups.begin());
            const uint64_t* h = hist.data() + g * kBins;
            const size_t digit = select_digit(h, kBins, remaining[r]);
            prefix[r] = (pass == 0 ? 0ull : (prefix[r] << kDigitBits)) | digit;
        }
    }
    for (size_t r = 0; r < ranks.size(); ++r) out[r] = value_of_key<T>(static_cast<Key>(prefix[r]));
}

}  // namespace

std::vector<uint64_t> histogram16(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, uintptr_t stream) {
    return dispatch_all(in.dtype, [&](auto tag) -> std::vector<uint64_t> {
        using T = typename decltype(tag)::type;
        if constexpr (sizeof(T) <= 2) {
            return histogram_impl<T>(layout, in, mask, as_stream(stream));
        } else {
            throw std::invalid_argument("histogram16 needs an input of at most 16 bits");
        }
    });
}

Moments moments(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, double clamp_lo, double clamp_hi,
                uintptr_t stream) {
    return dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return moments_impl<T>(layout, in, mask, clamp_lo, clamp_hi, as_stream(stream));
    });
}

void order_statistics(const Layout& layout, const ArrayArg& in, const ArrayArg& mask,
                      const std::vector<int64_t>& ranks, uintptr_t out_values, uintptr_t stream) {
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        order_statistics_impl<T>(layout, in, mask, ranks, reinterpret_cast<T*>(out_values), as_stream(stream));
    });
}

}  // namespace medseg::cuda
