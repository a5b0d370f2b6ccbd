// Label-map resampling on the CPU: nearest neighbour (a bit-exact gather, any dtype) and the
// linear "per-class interpolation + argmax" vote, done per output voxel from its 8 neighbours
// so that no one-hot or per-class volume is ever allocated.
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "resample_cpu.h"

namespace medseg::cpu {
namespace {

// Nearest source index of every output sample of every axis.
std::vector<std::vector<int64_t>> nearest_tables(const int64_t* in_shape, const int64_t* out_shape) {
    std::vector<std::vector<int64_t>> tables(kResampleDims);
    double w[4] = {0.0, 0.0, 0.0, 0.0};
    for (int a = 1; a < kResampleDims; ++a) {
        tables[a].resize(out_shape[a]);
        for (int64_t j = 0; j < out_shape[a]; ++j) resample_axis_taps(j, in_shape[a], out_shape[a], 0, tables[a][j], w);
    }
    return tables;
}

template <typename E>
void gather(const int64_t* in_shape, const int64_t* out_shape, const ArrayArg& in, const ArrayArg& out) {
    const auto tables = nearest_tables(in_shape, out_shape);
    const int64_t rows = out_shape[0] * out_shape[1] * out_shape[2];
    const E* src = in.data<E>();
    E* dst = out.data<E>();
    const int64_t nx = out_shape[3];
    const int64_t* ix = tables[3].data();
    const int64_t sx = in.strides.s[3], dx = out.strides.s[3];
    parallel_for(rows, 16, [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
            const int64_t c = r / (out_shape[1] * out_shape[2]);
            const int64_t j1 = (r / out_shape[2]) % out_shape[1];
            const int64_t j2 = r % out_shape[2];
            const E* s = src + c * in.strides.s[0] + tables[1][j1] * in.strides.s[1] + tables[2][j2] * in.strides.s[2];
            E* d = dst + c * out.strides.s[0] + j1 * out.strides.s[1] + j2 * out.strides.s[2];
            for (int64_t x = 0; x < nx; ++x) d[x * dx] = s[ix[x] * sx];
        }
    });
}

struct LinearTable {
    std::vector<int64_t> i0, i1;
    std::vector<float> w0, w1;
};

LinearTable linear_table(int64_t n_in, int64_t n_out, int order) {
    LinearTable t;
    t.i0.resize(n_out);
    t.i1.resize(n_out);
    t.w0.resize(n_out);
    t.w1.resize(n_out);
    const int taps = resample_taps(n_in, order);
    double w[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t j = 0; j < n_out; ++j) {
        int64_t first;
        resample_axis_taps(j, n_in, n_out, order, first, w);
        t.i0[j] = first;
        t.i1[j] = taps == 2 ? first + 1 : first;
        t.w0[j] = static_cast<float>(w[0]);
        t.w1[j] = taps == 2 ? static_cast<float>(w[1]) : 0.0f;
    }
    return t;
}

template <typename L>
void vote(const int64_t* in_shape, const int64_t* out_shape, const int* orders, const ArrayArg& in, const ArrayArg& out) {
    LinearTable t[kResampleDims];
    for (int a = 1; a < kResampleDims; ++a) t[a] = linear_table(in_shape[a], out_shape[a], orders[a]);
    const int64_t rows = out_shape[0] * out_shape[1] * out_shape[2];
    const L* src = in.data<L>();
    L* dst = out.data<L>();
    const int64_t* s = in.strides.s;
    const int64_t nx = out_shape[3];
    parallel_for(rows, 16, [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
            const int64_t c = r / (out_shape[1] * out_shape[2]);
            const int64_t j1 = (r / out_shape[2]) % out_shape[1];
            const int64_t j2 = r % out_shape[2];
            const L* base = src + c * s[0];
            const L* row[4] = {
                base + t[1].i0[j1] * s[1] + t[2].i0[j2] * s[2], base + t[1].i0[j1] * s[1] + t[2].i1[j2] * s[2],
                base + t[1].i1[j1] * s[1] + t[2].i0[j2] * s[2], base + t[1].i1[j1] * s[1] + t[2].i1[j2] * s[2]};
            const float wr[4] = {t[1].w0[j1] * t[2].w0[j2], t[1].w0[j1] * t[2].w1[j2], t[1].w1[j1] * t[2].w0[j2],
                                 t[1].w1[j1] * t[2].w1[j2]};
            L* d = dst + c * out.strides.s[0] + j1 * out.strides.s[1] + j2 * out.strides.s[2];
            const int64_t dx = out.strides.s[3], sx = s[3];
            for (int64_t x = 0; x < nx; ++x) {
                const int64_t x0 = t[3].i0[x] * sx, x1 = t[3].i1[x] * sx;
                const L labels[8] = {row[0][x0], row[0][x1], row[1][x0], row[1][x1],
                                     row[2][x0], row[2][x1], row[3][x0], row[3][x1]};
                const float w0 = t[3].w0[x], w1 = t[3].w1[x];
                const float weights[8] = {wr[0] * w0, wr[0] * w1, wr[1] * w0, wr[1] * w1,
                                          wr[2] * w0, wr[2] * w1, wr[3] * w0, wr[3] * w1};
                d[x * dx] = label_vote<L>(labels, weights, 8);
            }
        }
    });
}

bool empty(const int64_t* in_shape, const int64_t* out_shape) {
    for (int a = 0; a < kResampleDims; ++a)
        if (in_shape[a] <= 0 || out_shape[a] <= 0) return true;
    return false;
}

}  // namespace

void resample_nearest(const int64_t* in_shape, const int64_t* out_shape, const ArrayArg& in, const ArrayArg& out) {
    if (empty(in_shape, out_shape)) return;
    if (in.dtype != out.dtype) throw std::invalid_argument("resample_nearest: input and output dtypes differ");
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (sizeof(T) == 1) gather<uint8_t>(in_shape, out_shape, in, out);
        else if constexpr (sizeof(T) == 2) gather<uint16_t>(in_shape, out_shape, in, out);
        else if constexpr (sizeof(T) == 4) gather<uint32_t>(in_shape, out_shape, in, out);
        else gather<uint64_t>(in_shape, out_shape, in, out);
    });
}

void resample_labels(const int64_t* in_shape, const int64_t* out_shape, const int* orders, const ArrayArg& in,
                     const ArrayArg& out) {
    if (empty(in_shape, out_shape)) return;
    if (in.dtype != out.dtype) throw std::invalid_argument("resample_labels: input and output dtypes differ");
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_integral<T>::value) {
            vote<T>(in_shape, out_shape, orders, in, out);
        } else {
            throw std::invalid_argument(std::string("resample_labels needs integer labels, got ") + dtype_name(in.dtype));
        }
    });
}

}  // namespace medseg::cpu
