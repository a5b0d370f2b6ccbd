// Label maps read value by value (MONAI's RemoveSmallObjects rule, where each label value is one
// object): the voxel count of every value 0..max_value, and a value table applied voxel by
// voxel. Values are truncated toward zero (numpy's astype(int)); Python guarantees finite values
// in [0, max_value] (it has the map's min and max) and a small enough max_value. Counts are
// exact integers summed per thread then in thread order: independent of the thread count.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "components_cpu.h"
#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "row_tiles.h"

namespace medseg::cpu {
namespace {

template <typename T>
inline int64_t value_index(T v) {
    if constexpr (std::is_same<T, bool>::value) return v ? 1 : 0;
    else return static_cast<int64_t>(v);   // truncation toward zero, as numpy astype
}

template <typename T>
void histogram(const Layout& layout, const ArrayArg& in, int64_t max_value, int64_t* counts) {
    const RowTiles tiles(layout);
    const int64_t bins = max_value + 1;
    // Four interleaved histograms (element i counts into copy i % 4): neighbouring voxels mostly
    // share a label, and one copy would chain every increment on the previous one.
    constexpr int kLanes = 4;
    const int threads = planned_threads(tiles.items(), 16);
    std::vector<std::vector<int64_t>> partial(threads, std::vector<int64_t>(kLanes * bins, 0));
    std::vector<int> invalid(threads, 0);
    parallel_for(tiles.items(), 16, [&](int64_t first, int64_t last, int t) {
        int64_t* h = partial[t].data();
        int bad = 0;
        const int64_t step = last_stride(layout, in.strides);
        for (int64_t item = first; item < last; ++item) {
            int64_t row, begin, count;
            tiles.locate(item, row, begin, count);
            const T* src = in.data<T>() + in.strides.row_offset(layout, row) + begin * step;
            for (int64_t i = 0; i < count; ++i) {
                int64_t v = value_index(src[i * step]);
                bad |= (v < 0) | (v > max_value);
                v = v < 0 ? 0 : (v > max_value ? max_value : v);
                ++h[(i & (kLanes - 1)) * bins + v];
            }
        }
        invalid[t] = bad;
    });
    for (int bad : invalid)
        if (bad) throw std::invalid_argument("label value outside [0, max_value]");
    std::fill(counts, counts + bins, 0);
    for (const auto& h : partial)
        for (int lane = 0; lane < kLanes; ++lane)
            for (int64_t b = 0; b < bins; ++b) counts[b] += h[lane * bins + b];
}

template <typename T, typename W>
void remap(const Layout& layout, const ArrayArg& in, const double* table, int64_t max_value, const ArrayArg& out) {
    const RowTiles tiles(layout);
    std::vector<W> typed(static_cast<size_t>(max_value + 1));
    for (int64_t v = 0; v <= max_value; ++v) typed[v] = static_cast<W>(table[v]);
    parallel_for(tiles.items(), 16, [&](int64_t first, int64_t last, int) {
        const int64_t step = last_stride(layout, in.strides), dstep = last_stride(layout, out.strides);
        for (int64_t item = first; item < last; ++item) {
            int64_t row, begin, count;
            tiles.locate(item, row, begin, count);
            const T* src = in.data<T>() + in.strides.row_offset(layout, row) + begin * step;
            W* dst = out.data<W>() + out.strides.row_offset(layout, row) + begin * dstep;
            for (int64_t i = 0; i < count; ++i) {
                const int64_t v = value_index(src[i * step]);
                if (v < 0 || v > max_value) throw std::invalid_argument("label value outside [0, max_value]");
                dst[i * dstep] = typed[v];
            }
        }
    });
}

}  // namespace

void value_counts(const Layout& layout, const ArrayArg& in, int64_t max_value, int64_t* counts) {
    if (max_value < 0) throw std::invalid_argument("max_value must be >= 0");
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_same<T, half_t>::value || std::is_same<T, bfloat16_t>::value)
            throw std::invalid_argument("float16 / bfloat16 label maps are not supported");
        else
            histogram<T>(layout, in, max_value, counts);
    });
}

void apply_value_table(const Layout& layout, const ArrayArg& in, const double* table, int64_t max_value,
                       const ArrayArg& out) {
    if (max_value < 0) throw std::invalid_argument("max_value must be >= 0");
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        dispatch_all(out.dtype, [&](auto out_tag) {
            using W = typename decltype(out_tag)::type;
            if constexpr (std::is_same<T, half_t>::value || std::is_same<T, bfloat16_t>::value ||
                          std::is_same<W, half_t>::value || std::is_same<W, bfloat16_t>::value)
                throw std::invalid_argument("float16 / bfloat16 label maps are not supported");
            else
                remap<T, W>(layout, in, table, max_value, out);
        });
    });
}

}  // namespace medseg::cpu
