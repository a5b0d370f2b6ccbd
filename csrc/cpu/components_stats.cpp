// Per-label statistics of an integer label image: voxel count, bounding box and coordinate
// sums. Each thread accumulates its rows in its own table (exact int64), tables are added in
// thread order: integers, so the result does not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "components_cpu.h"
#include "medseg/dispatch.h"
#include "medseg/parallel.h"

namespace medseg::cpu {

static void check_statistics_max_label(int64_t max_label) {
    // Per-label tables of 3 * (max_label + 1) int64: reject values whose size overflows int64.
    if (max_label < 0 || max_label > std::numeric_limits<int64_t>::max() / 3 - 1)
        throw std::invalid_argument("label_statistics: max_label must be in 0.." +
                                    std::to_string(std::numeric_limits<int64_t>::max() / 3 - 1) +
                                    ", got " + std::to_string(max_label));
}

void label_statistics(const Layout& layout, const ArrayArg& labels, int64_t max_label, int64_t* counts,
                      int64_t* mins, int64_t* maxs, double* sums) {
    if (layout.ndim != 3) throw std::invalid_argument("label_statistics expects a 3-D layout");
    check_statistics_max_label(max_label);   // L = max_label + 1 and 3 * L must not overflow
    const int64_t D = layout.shape[0], H = layout.shape[1], W = layout.shape[2];
    const int64_t R = D * H, L = max_label + 1;
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(W, 1));
    const int threads = planned_threads(R, grain);
    struct Table {
        std::vector<int64_t> count, lo, hi, sum;
    };
    std::vector<Table> tables(threads);
    std::atomic<bool> out_of_range{false};
    dispatch_all(labels.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_integral<T>::value) {
            const T* base = labels.data<T>();
            const auto& s = labels.strides.s;
            parallel_for(R, grain, [&](int64_t r0, int64_t r1, int t) {
                Table& tb = tables[t];
                tb.count.assign(L, 0);
                tb.lo.assign(3 * L, std::numeric_limits<int64_t>::max());
                tb.hi.assign(3 * L, -1);
                tb.sum.assign(3 * L, 0);
                for (int64_t r = r0; r < r1; ++r) {
                    const int64_t z = r / H, y = r % H;
                    const T* p = base + z * s[0] + y * s[1];
                    int64_t x = 0;
                    while (x < W) {
                        const T v = p[x * s[2]];
                        const int64_t start = x++;
                        while (x < W && p[x * s[2]] == v) ++x;   // a run of one label
                        const int64_t l = static_cast<int64_t>(v), n = x - start;
                        // A value outside the table (a caller's max_label too small, or a uint64
                        // above INT64_MAX) would index out of bounds: count it, report after.
                        if (l < 0 || l > max_label) {
                            out_of_range.store(true, std::memory_order_relaxed);
                            continue;
                        }
                        tb.count[l] += n;
                        int64_t* lo = &tb.lo[3 * l];
                        int64_t* hi = &tb.hi[3 * l];
                        lo[0] = std::min(lo[0], z), hi[0] = std::max(hi[0], z);
                        lo[1] = std::min(lo[1], y), hi[1] = std::max(hi[1], y);
                        lo[2] = std::min(lo[2], start), hi[2] = std::max(hi[2], x - 1);
                        int64_t* sm = &tb.sum[3 * l];
                        sm[0] += z * n, sm[1] += y * n, sm[2] += (start + x - 1) * n / 2;
                    }
                }
            });
        } else {
            throw std::invalid_argument("label_statistics needs bool or integer labels");
        }
    });
    if (out_of_range.load())
        throw std::invalid_argument("label_statistics: labels hold a value outside 0..max_label (max_label=" +
                                    std::to_string(max_label) + ")");
    std::fill(counts, counts + L, int64_t(0));
    for (int64_t i = 0; i < 3 * L; ++i) mins[i] = std::numeric_limits<int64_t>::max(), maxs[i] = -1;
    std::vector<int64_t> sum(3 * L, 0);
    for (const Table& tb : tables) {
        if (tb.count.empty()) continue;
        for (int64_t l = 0; l < L; ++l) counts[l] += tb.count[l];
        for (int64_t i = 0; i < 3 * L; ++i) {
            mins[i] = std::min(mins[i], tb.lo[i]);
            maxs[i] = std::max(maxs[i], tb.hi[i]);
            sum[i] += tb.sum[i];
        }
    }
    for (int64_t i = 0; i < 3 * L; ++i) sums[i] = static_cast<double>(sum[i]);
}

}  // namespace medseg::cpu
