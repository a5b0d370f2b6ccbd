// Outputs of a run labeling: int32 labels, masks and filtered copies written row by row in
// parallel straight from the runs (no intermediate label volume), plus per-component sizes,
// border flags and first voxels.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "components_cpu.h"
#include "medseg/dispatch.h"
#include "medseg/parallel.h"

namespace medseg::cpu {

namespace {

// Calls fill(row pointer offset (z, y), x_begin, x_end, run index or -1) over every row in order:
// each row is covered by background gaps (-1) and runs.
template <typename RowFn>
void for_each_row(const RunLabeling& rl, RowFn&& row_fn) {
    const int64_t D = rl.layout.shape[0], H = rl.layout.shape[1];
    const int64_t R = D * H;
    const int64_t W = rl.layout.shape[2];
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(W, 1));
    const int threads = planned_threads(R, grain);
    if (threads <= 1) {
        for (int64_t r = 0; r < R; ++r) row_fn(r / H, r % H, rl.row_start[r], rl.row_start[r + 1]);
        return;
    }
    // Chunks of rows taken from a shared counter: a thread descheduled on a busy machine does
    // not hold the others up (each row is written by exactly one thread, in any order).
    const int64_t chunk = std::max<int64_t>(grain / 4, (R + 16 * threads - 1) / (16 * threads));
    parallel_for_dynamic(R, chunk, [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r) row_fn(r / H, r % H, rl.row_start[r], rl.row_start[r + 1]);
    });
}

template <typename O>
void fill(O* p, int64_t stride, int64_t begin, int64_t end, O value) {
    if (stride == 1) {
        std::fill(p + begin, p + end, value);
    } else {
        for (int64_t x = begin; x < end; ++x) p[x * stride] = value;
    }
}

}  // namespace

void write_labels(const RunLabeling& rl, const ArrayArg& out, bool zeroed) {
    const int64_t W = rl.layout.shape[2];
    const auto& s = out.strides.s;
    int32_t* base = out.data<int32_t>();
    for_each_row(rl, [&](int64_t z, int64_t y, int64_t a0, int64_t a1) {
        int32_t* p = base + z * s[0] + y * s[1];
        int64_t x = 0, i = a0;
        if (s[2] == 1 && (a1 - a0) * 16 > W) {
            // Many short runs (noise): zero the row, then per run one 4-label store at its start
            // and one 4-zero store at its end, which the next run's store overwrites as needed.
            if (!zeroed) std::fill(p, p + W, 0);
            for (; i < a1 && rl.runs[i].end + 4 <= W; ++i) {
                const Run run = rl.runs[i];
                const int32_t v = static_cast<int32_t>(rl.label[i]);
                if (run.end - run.begin <= 4) {
                    const int32_t four[4] = {v, v, v, v};
                    std::memcpy(p + run.begin, four, sizeof four);
                } else {
                    std::fill(p + run.begin, p + run.end, v);
                }
                const int32_t zero[4] = {0, 0, 0, 0};
                std::memcpy(p + run.end, zero, sizeof zero);
            }
            for (; i < a1; ++i) std::fill(p + rl.runs[i].begin, p + rl.runs[i].end, static_cast<int32_t>(rl.label[i]));
            return;
        }
        for (; i < a1; ++i) {
            const Run run = rl.runs[i];
            if (!zeroed) fill<int32_t>(p, s[2], x, run.begin, 0);
            fill<int32_t>(p, s[2], run.begin, run.end, static_cast<int32_t>(rl.label[i]));
            x = run.end;
        }
        if (!zeroed) fill<int32_t>(p, s[2], x, W, 0);
    });
}

void write_mask(const RunLabeling& rl, const ArrayArg& out, const uint8_t* keep, uint8_t outside_value,
                bool zeroed) {
    zeroed = zeroed && outside_value == 0;
    if (out.dtype != DType::Bool && out.dtype != DType::UInt8)
        throw std::invalid_argument("write_mask needs a bool or uint8 output");
    const int64_t W = rl.layout.shape[2];
    const auto& s = out.strides.s;
    uint8_t* base = out.data<uint8_t>();
    for_each_row(rl, [&](int64_t z, int64_t y, int64_t a0, int64_t a1) {
        uint8_t* p = base + z * s[0] + y * s[1];
        int64_t x = 0;
        if (zeroed) {   // only the kept runs are written
            for (int64_t i = a0; i < a1; ++i)
                if (keep[rl.label[i]]) fill<uint8_t>(p, s[2], rl.runs[i].begin, rl.runs[i].end, keep[rl.label[i]]);
            return;
        }
        for (int64_t i = a0; i < a1; ++i) {
            const Run run = rl.runs[i];
            fill<uint8_t>(p, s[2], x, run.begin, outside_value);
            fill<uint8_t>(p, s[2], run.begin, run.end, keep[rl.label[i]]);
            x = run.end;
        }
        fill<uint8_t>(p, s[2], x, W, outside_value);
    });
}

void write_filtered(const RunLabeling& rl, const ArrayArg& out, const uint8_t* keep, bool zeroed) {
    zeroed = zeroed && rl.background == 0;
    if (out.dtype != rl.input.dtype) throw std::invalid_argument("write_filtered needs an output of the input's dtype");
    if (rl.invert) throw std::invalid_argument("write_filtered needs a labeling of the foreground");
    dispatch_all(out.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_integral<T>::value) {
            const int64_t W = rl.layout.shape[2];
            const auto& s = out.strides.s;
            const auto& si = rl.input.strides.s;
            T* base = out.data<T>();
            const T* in = rl.input.data<T>();
            const T bg = static_cast<T>(rl.background);
            for_each_row(rl, [&](int64_t z, int64_t y, int64_t a0, int64_t a1) {
                T* p = base + z * s[0] + y * s[1];
                const T* q = in + z * si[0] + y * si[1];
                if (zeroed) {   // only the kept runs are written
                    for (int64_t i = a0; i < a1; ++i)
                        if (keep[rl.label[i]])
                            fill<T>(p, s[2], rl.runs[i].begin, rl.runs[i].end, q[rl.runs[i].begin * si[2]]);
                    return;
                }
                int64_t x = 0;
                for (int64_t i = a0; i < a1; ++i) {
                    const Run run = rl.runs[i];
                    fill<T>(p, s[2], x, run.begin, bg);
                    fill<T>(p, s[2], run.begin, run.end, keep[rl.label[i]] ? q[run.begin * si[2]] : bg);
                    x = run.end;
                }
                fill<T>(p, s[2], x, W, bg);
            });
        } else {
            throw std::invalid_argument("write_filtered needs bool or integer data");
        }
    });
}

void component_sizes(const RunLabeling& rl, int64_t* sizes) {
    std::fill(sizes, sizes + rl.count + 1, int64_t(0));
    const size_t n = rl.runs.size();
    for (size_t i = 0; i < n; ++i) sizes[rl.label[i]] += rl.runs[i].end - rl.runs[i].begin;
}

void border_flags(const RunLabeling& rl, uint8_t* flags, bool use_z) {
    std::fill(flags, flags + rl.count + 1, uint8_t(0));
    const int64_t D = rl.layout.shape[0], H = rl.layout.shape[1], W = rl.layout.shape[2];
    for (int64_t r = 0; r < D * H; ++r) {
        const int64_t z = r / H, y = r % H;
        const bool edge_row = y == 0 || y == H - 1 || (use_z && (z == 0 || z == D - 1));
        for (int64_t i = rl.row_start[r]; i < rl.row_start[r + 1]; ++i)
            if (edge_row || rl.runs[i].begin == 0 || rl.runs[i].end == W) flags[rl.label[i]] = 1;
    }
}

void first_voxels(const RunLabeling& rl, int64_t* first) {
    const int64_t H = rl.layout.shape[1], W = rl.layout.shape[2];
    first[0] = -1;
    // The root run's row: binary search in row_start.
    for (int64_t c = 0; c < rl.count; ++c) {
        const int64_t i = rl.root_run[c];
        const auto it = std::upper_bound(rl.row_start.begin(), rl.row_start.end(), i);
        const int64_t r = (it - rl.row_start.begin()) - 1;
        first[c + 1] = (r / H * H + r % H) * W + rl.runs[i].begin;
    }
}

}  // namespace medseg::cpu
