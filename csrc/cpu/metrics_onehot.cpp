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

namespace medseg::cpu {
namespace {

constexpr int64_t kBlock = 65536;   // voxels per work item: long runs of each plane, labels in L2

template <typename T>
inline bool is_one(T v, bool float32_ones) {
    if constexpr (std::is_same<T, double>::value) {
        return float32_ones ? static_cast<float>(v) == 1.0f : v == 1.0;
    } else if constexpr (std::is_same<T, bool>::value) {
        (void)float32_ones;
        return v;
    } else {
        (void)float32_ones;
        return v == static_cast<T>(1);
    }
}

template <typename T>
using BlockCount = typename std::conditional<sizeof(T) == 8, int64_t, int32_t>::type;

template <typename T>
void run(int64_t B, int64_t K, int64_t N, const ArrayArg& x, bool float32_ones, int64_t* counts, int32_t* labels,
         int64_t* conflicts) {
    const T* base = x.data<T>();
    const int64_t sb = x.strides.s[0], sk = x.strides.s[1];
    const int64_t blocks = (N + kBlock - 1) / kBlock;
    const int64_t items = B * blocks;
    const int threads = planned_threads(items, 1);
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
                // Block counters as wide as T (at least 32 bits) so that the loops vectorise;
                // zeros = len - nonzero (NaN is nonzero and not zero, as numpy counts it).
                BlockCount<T> nonzero = 0, ones = 0;
                if (labels) {
                    const int32_t code = static_cast<int32_t>(b * K + k + 1);
                    BlockCount<T> extra = 0;
                    int32_t* lb = lab.data();
                    for (int64_t n = 0; n < len; ++n) {
                        const T v = p[n];
                        const BlockCount<T> one = is_one(v, float32_ones) ? 1 : 0;
                        nonzero += v != T(0) ? 1 : 0;
                        ones += one;
                        const int32_t prev = lb[n];
                        extra += (one != 0 && prev != 0) ? 1 : 0;
                        lb[n] = one != 0 ? code : prev;
                    }
                    conflict += extra;
                } else {
                    for (int64_t n = 0; n < len; ++n) {
                        const T v = p[n];
                        nonzero += v != T(0) ? 1 : 0;
                        ones += is_one(v, float32_ones) ? 1 : 0;
                    }
                }
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
    dispatch_all(x.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_same<T, half_t>::value || std::is_same<T, bfloat16_t>::value) {
            throw std::invalid_argument("float16 and bfloat16 one-hot arrays are not supported");
        } else {
            run<T>(B, K, N, x, float32_ones, counts, labels, conflicts);
        }
    });
}

}  // namespace medseg::cpu
