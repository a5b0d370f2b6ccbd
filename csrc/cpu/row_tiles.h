// Splits a strided N-d traversal into (row, tile) work items of at most kTile elements, so
// work is balanced across threads even when Python collapsed the array to one long row.
#pragma once

#include <algorithm>
#include <cstdint>

#include "medseg/strided.h"

namespace medseg::cpu {

constexpr int64_t kTile = 8192;

struct RowTiles {
    int64_t rows, row_length, tiles_per_row;

    explicit RowTiles(const Layout& layout)
        : rows(layout_rows(layout)),
          row_length(layout.ndim ? layout.shape[layout.ndim - 1] : 1),
          tiles_per_row(std::max<int64_t>(1, (row_length + kTile - 1) / kTile)) {}

    int64_t items() const { return row_length == 0 ? 0 : rows * tiles_per_row; }

    // For work item `item`: the row index, the first element in that row and the element count.
    void locate(int64_t item, int64_t& row, int64_t& begin, int64_t& count) const {
        row = item / tiles_per_row;
        begin = (item % tiles_per_row) * kTile;
        count = std::min(kTile, row_length - begin);
    }
};

inline int64_t last_stride(const Layout& layout, const Strides& strides) {
    return layout.ndim ? strides.s[layout.ndim - 1] : 1;
}

}  // namespace medseg::cpu
