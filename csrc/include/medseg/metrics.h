// Reductions of surface distances into the statistics of each peer convention, written to
// reproduce the peers' floating-point operation order (numpy pairwise sums and 'linear'
// percentiles, torch.quantile in float32, the surface-distance package's weighted nearest rank).
// Host-only: these run once per class on short arrays.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

namespace medseg {

enum class Convention : int { Monai = 0, Medpy = 1, DeepMind = 2 };

// One requested statistic of a pair of masks.
enum class SurfaceStat : int { Hausdorff = 0, AverageDistance = 1, SurfaceDice = 2 };
struct SurfaceQuery {
    SurfaceStat stat = SurfaceStat::Hausdorff;
    double percentile = -1.0;   // < 0: the maximum
    bool directed = false;      // pred -> gt only
    double tolerance = 0.0;     // surface Dice
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src, PW_BLOCKSIZE 128), so
// sums and means equal numpy's bit for bit.
inline double pairwise_sum(const double* a, int64_t n) {
    if (n < 8) {
        double res = 0.0;
        for (int64_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        int64_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

inline double pairwise_mean(const std::vector<double>& v) {
    return v.empty() ? kNaN : pairwise_sum(v.data(), static_cast<int64_t>(v.size())) / static_cast<double>(v.size());
}

// numpy.percentile(v, p), method 'linear' (v is reordered).
inline double numpy_percentile(std::vector<double>& v, double p) {
    const int64_t n = static_cast<int64_t>(v.size());
    if (n == 0) return kNaN;
    const double q = p / 100.0;
    const double virtual_index = static_cast<double>(n - 1) * q;
    int64_t prev = static_cast<int64_t>(std::floor(virtual_index));
    int64_t next = prev + 1;
    if (virtual_index >= static_cast<double>(n - 1)) prev = next = n - 1;
    if (virtual_index < 0) prev = next = 0;
    const double gamma = virtual_index - static_cast<double>(prev);
    std::nth_element(v.begin(), v.begin() + prev, v.end());
    const double a = v[prev];
    double b = a;
    if (next != prev) b = *std::min_element(v.begin() + prev + 1, v.end());
    const double diff = b - a;
    return gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma;
}

// torch.quantile(v_float32, p / 100) with 'linear' interpolation, in float32 (v is reordered).
inline float torch_quantile_f32(std::vector<float>& v, double p) {
    const int64_t n = static_cast<int64_t>(v.size());
    if (n == 0) return std::numeric_limits<float>::quiet_NaN();
    for (float x : v)
        if (std::isnan(x)) return x;
    const float q = static_cast<float>(p / 100.0);
    const float rank = q * static_cast<float>(n - 1);
    const int64_t below = static_cast<int64_t>(rank);
    const int64_t above = static_cast<int64_t>(std::ceil(rank));
    const float weight = rank - static_cast<float>(below);
    std::nth_element(v.begin(), v.begin() + below, v.end());
    const float a = v[below];
    const float b = above == below ? a : *std::min_element(v.begin() + below + 1, v.end());
    return std::abs(weight) < 0.5f ? a + weight * (b - a) : b - (b - a) * (1.0f - weight);
}

// The surface-distance package's robust Hausdorff of one direction: distances sorted by
// (distance, area), nearest rank on the cumulative area fraction (searchsorted, side='left').
// Values are non-negative (or +inf), so their bit patterns order like the values: an LSD radix
// sort by area bytes, then by distance bytes (stable passes, bytes equal everywhere skipped),
// gives the lexicographic (distance, area) order of std::sort on the pairs, in linear time.
inline void sort_by_distance_then_area(std::vector<double>& d, std::vector<double>& w) {
    const size_t n = d.size();
    if (n < 2) return;
    std::vector<uint64_t> kd(n), kw(n), td(n), tw(n);
    std::memcpy(kd.data(), d.data(), n * sizeof(double));
    std::memcpy(kw.data(), w.data(), n * sizeof(double));
    auto pass = [&](const std::vector<uint64_t>& key, int shift) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; ++i) ++count[((key[i] >> shift) & 0xFF) + 1];
        for (int b = 0; b < 256; ++b)
            if (count[b + 1] == n) return;   // this byte is the same everywhere
        for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
        for (size_t i = 0; i < n; ++i) {
            const size_t at = count[(key[i] >> shift) & 0xFF]++;
            td[at] = kd[i];
            tw[at] = kw[i];
        }
        kd.swap(td);
        kw.swap(tw);
    };
    for (int shift = 0; shift < 64; shift += 8) pass(kw, shift);
    for (int shift = 0; shift < 64; shift += 8) pass(kd, shift);
    std::memcpy(d.data(), kd.data(), n * sizeof(double));
    std::memcpy(w.data(), kw.data(), n * sizeof(double));
}

inline double weighted_nearest_rank(const std::vector<double>& d_sorted, const std::vector<double>& w_sorted,
                                    double percent) {
    const int64_t n = static_cast<int64_t>(d_sorted.size());
    if (n == 0) return kInf;
    const double total = pairwise_sum(w_sorted.data(), n);
    const double target = percent / 100.0;
    double cum = 0.0;
    int64_t idx = n;
    for (int64_t i = 0; i < n; ++i) {
        cum += w_sorted[i];
        if (cum / total >= target) {
            idx = i;
            break;
        }
    }
    return d_sorted[std::min(idx, n - 1)];
}

}  // namespace medseg
