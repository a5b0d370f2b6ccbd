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

// Pointers of one (row, tile) work item.
template <typename T>
struct TileView {
    const T* src;
    const uint8_t* mask;
    int64_t count, step, mask_step;
};

template <typename T, bool kMasked>
inline TileView<T> tile_view(const Layout& layout, const RowTiles& tiles, const ArrayArg& in, const ArrayArg& mask,
                             int64_t item) {
    int64_t row, begin, count;
    tiles.locate(item, row, begin, count);
    TileView<T> v;
    v.step = last_stride(layout, in.strides);
    v.src = in.data<T>() + in.strides.row_offset(layout, row) + begin * v.step;
    v.mask_step = kMasked ? last_stride(layout, mask.strides) : 0;
    v.mask = kMasked ? mask.data<uint8_t>() + mask.strides.row_offset(layout, row) + begin * v.mask_step : nullptr;
    v.count = count;
    return v;
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
        // Interleaved 32-bit copies, as in order_statistics_kernel, flushed before overflow.
        constexpr int kLanes = 4;
        std::vector<uint32_t> local(kLanes * kBins, 0);
        int64_t since_flush = 0;
        auto flush = [&] {
            uint64_t* total = partial[t].data();
            for (int lane = 0; lane < kLanes; ++lane)
                for (size_t b = 0; b < kBins; ++b) total[b] += local[lane * kBins + b];
            std::fill(local.begin(), local.end(), 0u);
            since_flush = 0;
        };
        for (int64_t item = first; item < last; ++item) {
            const TileView<T> v = tile_view<T, kMasked>(layout, tiles, in, mask, item);
            uint32_t* h = local.data();
            if (!kMasked && v.step == 1) {
                int64_t i = 0;
                for (; i + kLanes <= v.count; i += kLanes)
                    for (int l = 0; l < kLanes; ++l) ++h[l * kBins + SortKey<T>::of(v.src[i + l])];
                for (; i < v.count; ++i) ++h[SortKey<T>::of(v.src[i])];
            } else {
                for (int64_t i = 0; i < v.count; ++i)
                    if (!kMasked || v.mask[i * v.mask_step]) ++h[(i & (kLanes - 1)) * kBins + SortKey<T>::of(v.src[i * v.step])];
            }
            since_flush += v.count;
            if (since_flush > (int64_t(1) << 31)) flush();
        }
        flush();
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
TileMoments tile_moments(const TileView<T>& v, double lo, double hi) {
    TileMoments tm;
    auto clamp = [lo, hi](double x) { return x < lo ? lo : (x > hi ? hi : x); };
    int64_t i = 0;
    // The shift (first selected non-NaN value) keeps sums of deviations small and accurate.
    for (; i < v.count; ++i) {
        if (kMasked && !v.mask[i * v.mask_step]) continue;
        const double x = load_as<double>(v.src[i * v.step]);
        if (x != x) {
            ++tm.nan_count;
            continue;
        }
        tm.shift = clamp(x);
        break;
    }
    if (i == v.count) return tm;
    if (!kMasked && v.step == 1) {
        // Four independent accumulators, NaN folded in branch-free (it contributes a zero
        // deviation and is counted separately); fixed order, so independent of threads.
        constexpr int kLanes = 4;
        double a1[kLanes] = {0, 0, 0, 0}, a2[kLanes] = {0, 0, 0, 0};
        double mn[kLanes], mx[kLanes];
        int64_t nans[kLanes] = {0, 0, 0, 0};
        for (int l = 0; l < kLanes; ++l) mn[l] = mx[l] = tm.shift;
        const int64_t begin = i;
        int64_t j = begin;
        for (; j + kLanes <= v.count; j += kLanes) {
            for (int l = 0; l < kLanes; ++l) {
                double x = load_as<double>(v.src[j + l]);
                const bool nan = x != x;
                nans[l] += nan;
                x = nan ? tm.shift : clamp(x);
                const double d = x - tm.shift;
                a1[l] += d;
                a2[l] += d * d;
                mn[l] = x < mn[l] ? x : mn[l];
                mx[l] = x > mx[l] ? x : mx[l];
            }
        }
        for (; j < v.count; ++j) {
            double x = load_as<double>(v.src[j]);
            const bool nan = x != x;
            nans[0] += nan;
            x = nan ? tm.shift : clamp(x);
            const double d = x - tm.shift;
            a1[0] += d;
            a2[0] += d * d;
            mn[0] = x < mn[0] ? x : mn[0];
            mx[0] = x > mx[0] ? x : mx[0];
        }
        int64_t nan_total = 0;
        tm.min = mn[0];
        tm.max = mx[0];
        for (int l = 0; l < kLanes; ++l) {
            tm.s1 += a1[l];
            tm.s2 += a2[l];
            nan_total += nans[l];
            tm.min = mn[l] < tm.min ? mn[l] : tm.min;
            tm.max = mx[l] > tm.max ? mx[l] : tm.max;
        }
        tm.nan_count += nan_total;
        tm.count = (v.count - begin) - nan_total;
        return tm;
    }
    for (; i < v.count; ++i) {
        if (kMasked && !v.mask[i * v.mask_step]) continue;
        double x = load_as<double>(v.src[i * v.step]);
        if (x != x) {
            ++tm.nan_count;
            continue;
        }
        x = clamp(x);
        const double d = x - tm.shift;
        ++tm.count;
        tm.s1 += d;
        tm.s2 += d * d;
        tm.min = x < tm.min ? x : tm.min;
        tm.max = x > tm.max ? x : tm.max;
    }
    return tm;
}

template <typename T, bool kMasked>
Moments moments_kernel(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, double lo, double hi) {
    const RowTiles tiles(layout);
    std::vector<TileMoments> partial(static_cast<size_t>(tiles.items()));
    parallel_for(tiles.items(), 16, [&](int64_t first, int64_t last, int) {
        for (int64_t item = first; item < last; ++item)
            partial[item] = tile_moments<T, kMasked>(tile_view<T, kMasked>(layout, tiles, in, mask, item), lo, hi);
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
        const Key* group_keys = groups.data();
        parallel_for(tiles.items(), grain, [&](int64_t first, int64_t last, int t) {
            // 32-bit counters halve the histogram's cache footprint; they are flushed into the
            // thread's 64-bit totals long before they could overflow.
            // Four interleaved copies (element i counts into copy i % 4) break the chain of
            // dependent increments when neighbouring voxels share a bin, as most CT voxels do.
            constexpr int kLanes = 4;
            const size_t lane_bins = n_groups * kBins;
            std::vector<uint32_t> local(kLanes * lane_bins, 0);
            int64_t since_flush = 0;
            auto flush = [&] {
                uint64_t* total = partial[t].data();
                for (int lane = 0; lane < kLanes; ++lane)
                    for (size_t b = 0; b < lane_bins; ++b) total[b] += local[lane * lane_bins + b];
                std::fill(local.begin(), local.end(), 0u);
                since_flush = 0;
            };
            // Counts one selected value; callers guarantee the selection holds no NaN.
            auto count_value = [&](const T& v, int64_t i) {
                uint32_t* hist = local.data() + (i & (kLanes - 1)) * lane_bins;
                const Key k = SortKey<T>::of(v);
                const size_t digit = static_cast<size_t>((k >> digit_shift) & (kBins - 1));
                if (known_bits == 0) {
                    ++hist[digit];
                    return;
                }
                const Key known = static_cast<Key>(k >> (kKeyBits - known_bits));
                for (size_t g = 0; g < n_groups; ++g)
                    if (group_keys[g] == known) {
                        ++hist[g * kBins + digit];
                        return;
                    }
            };
            for (int64_t item = first; item < last; ++item) {
                const TileView<T> v = tile_view<T, kMasked>(layout, tiles, in, mask, item);
                if (!kMasked && v.step == 1) {
                    for (int64_t i = 0; i < v.count; ++i) count_value(v.src[i], i);
                } else {
                    for (int64_t i = 0; i < v.count; ++i)
                        if (!kMasked || v.mask[i * v.mask_step]) count_value(v.src[i * v.step], i);
                }
                since_flush += v.count;
                if (since_flush > (int64_t(1) << 31)) flush();
            }
            flush();
        });
        std::vector<uint64_t> hist(n_groups * kBins, 0);
        for (const auto& h : partial)
            for (size_t b = 0; b < hist.size(); ++b) hist[b] += h[b];
        for (size_t r = 0; r < ranks.size(); ++r) {
            const size_t g = static_cast<size_t>(std::lower_bound(groups.begin(), groups.end(), prefix[r]) - groups.begin());
            const uint64_t* h = hist.data() + g * kBins;
            const size_t digit = select_digit(h, kBins, remaining[r]);
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
