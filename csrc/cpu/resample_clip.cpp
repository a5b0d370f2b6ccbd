// Clip bounds of the order-3 resampling family: the input range per clip group.
#include <limits>
#include <vector>

#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "resample_cpu.h"

namespace medseg::cpu {

// Range of the input per clip group; NaNs are ignored, groups without values do not clip.
void resample_clip_bounds(const ResampleSpec& spec, const ArrayArg& in, std::vector<double>& lo, std::vector<double>& hi) {
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        using M = typename ResampleCompute<T, float>::type;
        const int k = spec.clip_axis > 0 ? spec.clip_axis : 1;
        int other[2], n_other = 0;
        for (int a = 1; a < kResampleDims; ++a)
            if (a != k) other[n_other++] = a;
        const int64_t channels = spec.in_shape[0], nk = spec.in_shape[k];
        const int64_t n1 = spec.in_shape[other[0]], n2 = spec.in_shape[other[1]];
        const int64_t s0 = in.strides.s[0], sk = in.strides.s[k];
        const int64_t s1 = in.strides.s[other[0]], s2 = in.strides.s[other[1]];
        const T* base = in.data<T>();
        const int64_t parts = channels * nk;
        std::vector<double> plo(parts), phi(parts);
        parallel_for(parts, 1, [&](int64_t begin, int64_t end, int) {
            for (int64_t part = begin; part < end; ++part) {
                const T* slice = base + (part / nk) * s0 + (part % nk) * sk;
                M mn = std::numeric_limits<M>::infinity(), mx = -std::numeric_limits<M>::infinity();
                for (int64_t i = 0; i < n1; ++i) {
                    const T* row = slice + i * s1;
                    for (int64_t j = 0; j < n2; ++j) {
                        const M v = load_as<M>(row[j * s2]);
                        mn = v < mn ? v : mn;
                        mx = v > mx ? v : mx;
                    }
                }
                plo[part] = static_cast<double>(mn);
                phi[part] = static_cast<double>(mx);
            }
        });
        if (spec.clip_axis > 0) {
            lo.swap(plo);
            hi.swap(phi);
        } else {
            lo.assign(channels, std::numeric_limits<double>::infinity());
            hi.assign(channels, -std::numeric_limits<double>::infinity());
            for (int64_t part = 0; part < parts; ++part) {
                lo[part / nk] = std::min(lo[part / nk], plo[part]);
                hi[part / nk] = std::max(hi[part / nk], phi[part]);
            }
        }
        for (size_t g = 0; g < lo.size(); ++g)
            if (!(lo[g] <= hi[g])) {
                lo[g] = -std::numeric_limits<double>::infinity();
                hi[g] = std::numeric_limits<double>::infinity();
            }
    });
}

}  // namespace medseg::cpu
