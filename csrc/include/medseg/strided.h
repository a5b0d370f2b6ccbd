// A view of an N-d array as raw pointer + extents + element strides, shared by CPU and CUDA
// drivers. Python orders and collapses axes before the call, so ndim is usually 1-3.
#pragma once

#include <cstdint>

#include "medseg/common.h"

namespace medseg {

constexpr int kMaxDims = 8;

struct Layout {
    int ndim = 0;
    int64_t shape[kMaxDims] = {0};
};

struct Strides {
    int64_t s[kMaxDims] = {0};   // in elements, may be negative or zero

    // Element offset of row `row` (all axes but the last) for a layout in C order.
    MSF_HD inline int64_t row_offset(const Layout& layout, int64_t row) const {
        int64_t offset = 0;
        for (int axis = layout.ndim - 2; axis >= 0; --axis) {
            const int64_t extent = layout.shape[axis];
            const int64_t index = row % extent;
            row /= extent;
            offset += index * s[axis];
        }
        return offset;
    }

    // Element offset of linear C-order index `linear`.
    MSF_HD inline int64_t offset(const Layout& layout, int64_t linear) const {
        int64_t off = 0;
        for (int axis = layout.ndim - 1; axis >= 0; --axis) {
            const int64_t extent = layout.shape[axis];
            off += (linear % extent) * s[axis];
            linear /= extent;
        }
        return off;
    }

    MSF_HD inline int64_t inner() const { return 0; }
};

MSF_HD inline int64_t layout_rows(const Layout& layout) {
    int64_t rows = 1;
    for (int axis = 0; axis + 1 < layout.ndim; ++axis) rows *= layout.shape[axis];
    return rows;
}

MSF_HD inline int64_t layout_size(const Layout& layout) {
    int64_t n = 1;
    for (int axis = 0; axis < layout.ndim; ++axis) n *= layout.shape[axis];
    return n;
}

}  // namespace medseg
