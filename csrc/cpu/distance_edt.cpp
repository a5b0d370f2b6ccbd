// CPU driver of distance_transform: zero elements of a strided mask of any dtype are the sites.
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "distance_cpu.h"
#include "medseg/dispatch.h"

namespace medseg::cpu {

namespace {

template <typename S>
struct ZeroSites {
    const S* data;
    Strides strides;
    Layout sub;          // shape[1:] as a layout, for row offsets
    int64_t s0, s_last, row_len;

    const S* row_start(int64_t i, int64_t r) const {
        int64_t offset = i * s0;
        if (sub.ndim > 0) {
            Strides sub_strides;
            for (int a = 0; a < sub.ndim; ++a) sub_strides.s[a] = strides.s[a + 1];
            offset += sub_strides.row_offset(sub, r);
        }
        return data + offset;
    }
    // Contiguous one-byte rows (bool, uint8, int8 masks) are read in place, zero = site; any
    // other row becomes 0/1 bytes (1 = site) in scratch.
    const uint8_t* row_bytes(int64_t i, int64_t r, uint8_t* scratch, bool& zero_is_site) const {
        const S* p = row_start(i, r);
        if constexpr (sizeof(S) == 1 && std::is_integral<S>::value) {
            if (s_last == 1 || row_len == 1) {
                zero_is_site = true;
                return reinterpret_cast<const uint8_t*>(p);
            }
        }
        zero_is_site = false;
        for (int64_t x = 0; x < row_len; ++x) scratch[x] = load_as<double>(p[x * s_last]) == 0.0;
        return scratch;
    }
};

// Distance of every element to the virtual site at index -1 along `axis` (no zero anywhere).
template <typename T>
void fill_without_sites(const EdtShape& sh, T* out, bool squared, int axis) {
    const int last = sh.ndim - 1;
    const int64_t row_len = sh.shape[last];
    const int64_t rows = sh.prod(0, last);
    parallel_for(rows, 64, [&](int64_t begin, int64_t end, int) {
        int64_t index[kMaxDims];
        for (int64_t r = begin; r < end; ++r) {
            int64_t rem = r;
            for (int a = last - 1; a >= 0; --a) {
                index[a] = rem % sh.shape[a];
                rem /= sh.shape[a];
            }
            for (int64_t x = 0; x < row_len; ++x) {
                index[last] = x;
                T value = 0;
                for (int a = 0; a < sh.ndim; ++a) {
                    const T t = static_cast<T>(index[a] + (a == axis ? 1 : 0)) * static_cast<T>(sh.spacing[a]);
                    value += t * t;
                }
                out[r * row_len + x] = squared ? value : std::sqrt(value);
            }
        }
    });
}

}  // namespace

void distance_transform(const Layout& layout, const ArrayArg& mask, const ArrayArg& out,
                        const std::vector<double>& spacing, bool squared, int virtual_axis) {
    if (static_cast<int>(spacing.size()) != layout.ndim) throw std::invalid_argument("spacing length != ndim");
    EdtShape sh;
    sh.ndim = layout.ndim;
    for (int a = 0; a < layout.ndim; ++a) {
        sh.shape[a] = layout.shape[a];
        sh.spacing[a] = spacing[a];
    }
    if (sh.ndim == 0 || sh.size() == 0) return;
    auto run = [&](auto out_tag) {
        using T = typename decltype(out_tag)::type;
        T* result = out.data<T>();
        const bool any = dispatch_all(mask.dtype, [&](auto in_tag) {
            using S = typename decltype(in_tag)::type;
            ZeroSites<S> sites;
            sites.data = mask.data<S>();
            sites.strides = mask.strides;
            sites.sub.ndim = sh.ndim - 1;
            for (int a = 1; a < sh.ndim; ++a) sites.sub.shape[a - 1] = sh.shape[a];
            // Rows of shape[1:] are rows of its own first ndim-2 axes; a 1-D array has one row.
            if (sh.ndim >= 2) sites.sub.shape[sh.ndim - 2] = sh.shape[sh.ndim - 1];
            sites.s0 = mask.strides.s[0];
            sites.s_last = sh.ndim > 1 ? mask.strides.s[sh.ndim - 1] : 0;
            sites.row_len = sh.ndim > 1 ? sh.shape[sh.ndim - 1] : 1;
            return edt_first_axis<T>(sh, sites, result, !squared && sh.ndim == 1, true);
        });
        if (!any) {
            fill_without_sites<T>(sh, result, squared, virtual_axis);
            return;
        }
        edt_other_axes<T>(sh, result, !squared, true);
    };
    if (out.dtype == DType::Float32) run(TypeTag<float>{});
    else if (out.dtype == DType::Float64) run(TypeTag<double>{});
    else throw std::invalid_argument("distance_transform output must be float32 or float64");
}

}  // namespace medseg::cpu
