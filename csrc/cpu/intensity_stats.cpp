// Intensity statistics: histogram (<= 16-bit ints), moments, exact order statistics.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "intensity_cpu.h"
#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "row_tiles.h"

namespace medseg::cpu {
namespace {

// Visits every selected element: fn(value, thread) over the (row, tile) items of [first, last).
template <typename T, bool kMasked, typename Fn>
inline void visit_items(const Layout& layout, const RowTiles& tiles, const ArrayArg& in, const ArrayArg& mask,
                        int64_t first, int64_t last, Fn&& fn) {
    const int64_t in_step = last_stride(layout, in.strides);
    const int64_t mask_step = kMasked ? last_stride(layout, mask.strides) : 0;
    for (int64_t item = first; item < last; ++item) {
        int64_t row, begin, count;
        tiles.locate(item, row, begin, count);
        const T* src = in.data<T>() + in.strides.row_offset(layout, row) + begin * in_step;
        if (kMasked) {
            const uint8_t* m = mask.data<uint8_t>() + mask.strides.row_offset(layout, row) + begin * mask_step;
            for (int64_t i = 0; i < count; ++i)
                if (m[i * mask_step]) fn(src[i * in_step], item);
        } else if (in_step == 1) {
            for (int64_t i = 0; i < count; ++i) fn(src[i], item);
        } else {
            for (int64_t i = 0; i < count; ++i) fn(src[i * in_step], item);
        }
    }
}

template <typename T, bool kMasked>
std::vector<uint64_t> histogram_kernel(const Layout& layout, const ArrayArg& in, const ArrayArg& mask) {
    using Key = typename SortKey<T>::Key;
    constexpr size_t kBins = size_t(1) << (8 * sizeof(Key));
    const RowTiles tiles(layout);
    const int64_t grain = 16;
    const int threads = planned_threads(tiles.items(), grain);
    std::vector<std::vector<uint64_t>> partial(threads, std::vector<uint64_t>(kBins, 0));
    parallel_for(tiles.items(), grain, [&](int64_t first, int64_t last, int t) {
        uint64_t* hist = partial[t].data();
        visit_items<T, kMasked>(layout, tiles, in, mask, first, last,
                                [hist](const T& v, int64_t) { ++hist[SortKey<T>::of(v)]; });
    });
    std::vector<uint64_t> total(kBins, 0);
    for (const auto& h : partial)
        for (size_t b = 0; b < kBins; ++b) total[b] += h[b];
    return total;
}

// Partial moments of one tile, relative to a shift (its first value) for numerical stability.
struct TileMoments {
    int64_t count = 0, nan_count = 0;
    double shift = 0.0, s1 = 0.0, s2 = 0.0;
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
};

template <typename T, bool kMasked>
Moments moments_kernel(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, double lo, double hi) {
    const RowTiles tiles(layout);
    std::vector<TileMoments> partial(static_cast<size_t>(tiles.items()));
    parallel_for(tiles.items(), 16, [&](int64_t first, int64_t last, int) {
        visit_items<T, kMasked>(layout, tiles, in, mask, first, last, [&](const T& v, int64_t item) {
            TileMoments& tm = partial[item];
            double x = load_as<double>(v);
            if (x != x) {
                ++tm.nan_count;
                return;
            }
            x = x < lo ? lo : (x > hi ? hi : x);
            if (tm.count == 0) tm.shift = x;
            const double d = x - tm.shift;
            ++tm.count;
            tm.s1 += d;
            tm.s2 += d * d;
            tm.min = x < tm.min ? x : tm.min;
            tm.max = x > tm.max ? x : tm.max;
        });
    });
    // Chan et al. (1979) pairwise update, applied in tile order: independent of thread count.
    Moments total;
    total.min = std::numeric_limits<double>::infinity();
    total.max = -std::numeric_limits<double>::infinity();
    for (const TileMoments& tm : partial) {
        total.nan_count += tm.nan_count;
        if (tm.count == 0) continue;
        const double n_b = static_cast<double>(tm.count);
        const double mean_b = tm.shift + tm.s1 / n_b;
        const double m2_b = std::max(0.0, tm.s2 - tm.s1 * tm.s1 / n_b);
        if (total.count == 0) {
            total.mean = mean_b;
            total.m2 = m2_b;
        } else {
            const double n_a = static_cast<double>(total.count);
            const double n = n_a + n_b;
            const double delta = mean_b - total.mean;
            total.mean += delta * n_b / n;
            total.m2 += m2_b + delta * delta * n_a * n_b / n;
        }
        total.count += tm.count;
        total.min = std::min(total.min, tm.min);
        total.max = std::max(total.max, tm.max);
    }
    if (total.count == 0) total.min = total.max = std::numeric_limits<double>::quiet_NaN();
    return total;
}

// Radix selection (most significant digit first): each pass histograms the next 16 key bits of
// the elements that share the already-determined prefix of a target rank.
template <typename T, bool kMasked>
void order_statistics_kernel(const Layout& layout, const ArrayArg& in, const ArrayArg& mask,
                             const std::vector<int64_t>& ranks, T* out) {
    using Key = typename SortKey<T>::Key;
    constexpr int kKeyBits = 8 * sizeof(Key);
    constexpr int kDigitBits = kKeyBits < 16 ? kKeyBits : 16;
    constexpr int kPasses = kKeyBits / kDigitBits;
    constexpr size_t kBins = size_t(1) << kDigitBits;
    const RowTiles tiles(layout);
    const int64_t grain = 16;

    std::vector<Key> prefix(ranks.size(), 0);
    std::vector<int64_t> remaining(ranks);
    for (int pass = 0; pass < kPasses; ++pass) {
        const int digit_shift = kKeyBits - kDigitBits * (pass + 1);
        const int known_bits = kDigitBits * pass;
        std::vector<Key> groups(prefix);
        std::sort(groups.begin(), groups.end());
        groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
        const size_t n_groups = groups.size();
        const int threads = planned_threads(tiles.items(), grain);
        std::vector<std::vector<uint64_t>> partial(threads, std::vector<uint64_t>(n_groups * kBins, 0));
        parallel_for(tiles.items(), grain, [&](int64_t first, int64_t last, int t) {
            uint64_t* hist = partial[t].data();
            visit_items<T, kMasked>(layout, tiles, in, mask, first, last, [&](const T& v, int64_t) {
                if (is_nan_value(v)) return;
                const Key k = SortKey<T>::of(v);
                const size_t digit = static_cast<size_t>((k >> digit_shift) & (kBins - 1));
                if (known_bits == 0) {
                    ++hist[digit];
                    return;
                }
                const Key known = static_cast<Key>(k >> (kKeyBits - known_bits));
                for (size_t g = 0; g < n_groups; ++g)
                    if (groups[g] == known) {
                        ++hist[g * kBins + digit];
                        return;
                    }
            });
        });
        std::vector<uint64_t> hist(n_groups * kBins, 0);
        for (const auto& h : partial)
            for (size_t b = 0; b < hist.size(); ++b) hist[b] += h[b];
        for (size_t r = 0; r < ranks.size(); ++r) {
            const size_t g = static_cast<size_t>(std::lower_bound(groups.begin(), groups.end(), prefix[r]) - groups.begin());
            const uint64_t* h = hist.data() + g * kBins;
            uint64_t below = 0;
            size_t digit = 0;
            for (; digit < kBins; ++digit) {
                if (below + h[digit] > static_cast<uint64_t>(remaining[r])) break;
                below += h[digit];
            }
            if (digit == kBins) throw std::out_of_range("rank exceeds the number of selected values");
            remaining[r] -= static_cast<int64_t>(below);
            prefix[r] = static_cast<Key>((pass == 0 ? Key(0) : static_cast<Key>(prefix[r] << (kDigitBits % kKeyBits))) | digit);
        }
    }
    for (size_t r = 0; r < ranks.size(); ++r) out[r] = value_of_key<T>(prefix[r]);
}

}  // namespace

std::vector<uint64_t> histogram16(const Layout& layout, const ArrayArg& in, const ArrayArg& mask) {
    return dispatch_all(in.dtype, [&](auto tag) -> std::vector<uint64_t> {
        using T = typename decltype(tag)::type;
        if constexpr (sizeof(T) <= 2) {
            return mask.present() ? histogram_kernel<T, true>(layout, in, mask) : histogram_kernel<T, false>(layout, in, mask);
        } else {
            throw std::invalid_argument("histogram16 needs an input of at most 16 bits");
        }
    });
}

Moments moments(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, double clamp_lo, double clamp_hi) {
    return dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return mask.present() ? moments_kernel<T, true>(layout, in, mask, clamp_lo, clamp_hi)
                              : moments_kernel<T, false>(layout, in, mask, clamp_lo, clamp_hi);
    });
}

void order_statistics(const Layout& layout, const ArrayArg& in, const ArrayArg& mask,
                      const std::vector<int64_t>& ranks, uintptr_t out_values) {
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        T* out = reinterpret_cast<T*>(out_values);
        if (mask.present())
            order_statistics_kernel<T, true>(layout, in, mask, ranks, out);
        else
            order_statistics_kernel<T, false>(layout, in, mask, ranks, out);
    });
}

}  // namespace medseg::cpu
