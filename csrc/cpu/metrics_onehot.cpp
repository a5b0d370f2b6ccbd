// One pass over a (B, K, N) one-hot (or multi-channel mask) array, as MONAI's metric classes read
// it: per (item, channel) the counts of nonzero values, of values equal to 1 and of zeros, and
// optionally the label map of the "== 1" channels (label b * K + k + 1, 0 where no channel is 1)
// with the number of 1s beyond the first in each voxel (nonzero: the label map is not usable).
// Replaces the numpy chain (x != 0, x == 1, sums over channels, a label per channel) that made the
// metric classes slower than the kernels behind them. Counts are exact integers summed per
// thread and then in thread order, so they do not depend on the thread count; each label voxel
// is written by one thread.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "metrics_cpu.h"
#include "simd_switch.h"

namespace medseg::cpu {
namespace {

constexpr int64_t kBlock = 65536;   // voxels per work item: long runs of each plane, labels in L2

template <typename T>
inline bool is_one(T v, bool float32_ones) {
    if constexpr (std::is_same<T, double>::value) {
        return float32_ones ? static_cast<float>(v) == 1.0f : v == 1.0;
    } else {   // bool arrays arrive as uint8 (onehot_summary)
        (void)float32_ones;
        return v == static_cast<T>(1);
    }
}

template <typename T>
using BlockCount = typename std::conditional<sizeof(T) == 8, int64_t, int32_t>::type;

// Counts of one run of one channel plane, and its label update. Counters as wide as T (at
// least 32 bits) so that the loops vectorise; zeros = len - nonzero (NaN is nonzero and not
// zero, as numpy counts it).
template <typename T>
__attribute__((always_inline)) inline void scan_body(const T* p, int64_t len, bool float32_ones, int32_t code,
                                                     int32_t* lb, BlockCount<T>& nonzero, BlockCount<T>& ones,
                                                     BlockCount<T>& extra) {
    // Counts first, in runs of kRun; the label update only for runs that hold a 1 (a one-hot
    // channel is 1 in few, spatially clustered voxels, so most runs skip it).
    constexpr int64_t kRun = 512;
    BlockCount<T> nz = 0, on = 0, ex = 0;   // locals: reductions over references do not vectorise
    for (int64_t s = 0; s < len; s += kRun) {
        const int64_t e = s + kRun < len ? s + kRun : len;
        BlockCount<T> run_nz = 0, run_on = 0;
        for (int64_t n = s; n < e; ++n) {
            const T v = p[n];
            run_nz += v != T(0) ? 1 : 0;
            run_on += is_one(v, float32_ones) ? 1 : 0;
        }
        nz += run_nz;
        on += run_on;
        if (!lb || run_on == 0) continue;
        for (int64_t n = s; n < e; ++n) {
            const bool one = is_one(p[n], float32_ones);
            const int32_t prev = lb[n];
            ex += (one && prev != 0) ? 1 : 0;
            lb[n] = one ? code : prev;
        }
    }
    nonzero += nz;
    ones += on;
    extra += ex;
}

template <typename T>
void scan_default(const T* p, int64_t len, bool f32, int32_t code, int32_t* lb, BlockCount<T>& nz,
                  BlockCount<T>& ones, BlockCount<T>& extra) {
    scan_body(p, len, f32, code, lb, nz, ones, extra);
}

#if MEDSEG_HAVE_AVX2_PATHS
// The same loop in 32-byte vectors (integer counts: the result is the same on either path).
template <typename T>
__attribute__((target("avx2"))) void scan_avx2(const T* p, int64_t len, bool f32, int32_t code, int32_t* lb,
                                               BlockCount<T>& nz, BlockCount<T>& ones, BlockCount<T>& extra) {
    scan_body(p, len, f32, code, lb, nz, ones, extra);
}
#endif

template <typename T>
void run(int64_t B, int64_t K, int64_t N, const ArrayArg& x, bool float32_ones, int64_t* counts, int32_t* labels,
         int64_t* conflicts) {
    const T* base = x.data<T>();
    const int64_t sb = x.strides.s[0], sk = x.strides.s[1];
    const int64_t blocks = (N + kBlock - 1) / kBlock;
    const int64_t items = B * blocks;
    const int threads = planned_threads(items, 1);
    auto scan = scan_default<T>;
#if MEDSEG_HAVE_AVX2_PATHS
    if (cpu_has_avx2_fma()) scan = scan_avx2<T>;
#endif
    // per thread: B * K * 3 counts and B conflict counts
    std::vector<int64_t> acc(static_cast<size_t>(threads) * B * (K * 3 + 1), 0);
    parallel_for(items, 1, [&](int64_t begin, int64_t end, int t) {
        int64_t* mine = acc.data() + static_cast<size_t>(t) * B * (K * 3 + 1);
        std::vector<int32_t> lab(labels ? kBlock : 0);
        for (int64_t item = begin; item < end; ++item) {
            const int64_t b = item / blocks, n0 = (item % blocks) * kBlock;
            const int64_t len = std::min(kBlock, N - n0);
            int64_t* cnt = mine + b * (K * 3 + 1);
            if (labels) std::fill(lab.begin(), lab.begin() + len, 0);
            int64_t conflict = 0;
            for (int64_t k = 0; k < K; ++k) {
                const T* p = base + b * sb + k * sk + n0;
                BlockCount<T> nonzero = 0, ones = 0, extra = 0;
                const int32_t code = static_cast<int32_t>(b * K + k + 1);
                scan(p, len, float32_ones, code, labels ? lab.data() : nullptr, nonzero, ones, extra);
                conflict += extra;
                cnt[k * 3 + 0] += nonzero;
                cnt[k * 3 + 1] += ones;
                cnt[k * 3 + 2] += len - nonzero;
            }
            cnt[K * 3] += conflict;
            if (labels) std::memcpy(labels + b * N + n0, lab.data(), sizeof(int32_t) * len);
        }
    });
    std::fill(counts, counts + B * K * 3, 0);
    std::fill(conflicts, conflicts + B, 0);
    for (int t = 0; t < threads; ++t) {
        const int64_t* mine = acc.data() + static_cast<size_t>(t) * B * (K * 3 + 1);
        for (int64_t b = 0; b < B; ++b) {
            for (int64_t i = 0; i < K * 3; ++i) counts[b * K * 3 + i] += mine[b * (K * 3 + 1) + i];
            conflicts[b] += mine[b * (K * 3 + 1) + K * 3];
        }
    }
}

}  // namespace

void onehot_summary(int64_t B, int64_t K, int64_t N, const ArrayArg& x, bool float32_ones, int64_t* counts,
                    int32_t* labels, int64_t* conflicts) {
    if (B < 0 || K < 0 || N < 0) throw std::invalid_argument("negative extent");
    if (N > 1 && x.strides.s[2] != 1) throw std::invalid_argument("voxels must be contiguous (stride 1)");
    if (labels && B * K >= (int64_t(1) << 31) - 1) throw std::invalid_argument("too many (item, channel) labels");
    if (B == 0 || K == 0 || N == 0) {
        std::fill(counts, counts + B * K * 3, 0);
        std::fill(conflicts, conflicts + B, 0);
        if (labels) std::fill(labels, labels + B * N, 0);
        return;
    }
    if (x.dtype == DType::Bool) {   // numpy / torch bools are bytes holding 0 or 1: read as uint8
        ArrayArg bytes = x;
        bytes.dtype = DType::UInt8;
        run<uint8_t>(B, K, N, bytes, float32_ones, counts, labels, conflicts);
        return;
    }
    dispatch_all(x.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_same<T, bool>::value || std::is_same<T, half_t>::value ||
                      std::is_same<T, bfloat16_t>::value) {
            throw std::invalid_argument("float16 and bfloat16 one-hot arrays are not supported");   // bool: above
        } else {
            run<T>(B, K, N, x, float32_ones, counts, labels, conflicts);
        }
    });
}

}  // namespace medseg::cpu
