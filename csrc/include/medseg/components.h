// Connected components: the neighbourhood and union-find math shared by the CPU (run-based)
// and CUDA (voxel-based) labelers. Plain C++ with MSF_HD, no pybind11 / CUDA headers.
//
// Numbering rule used everywhere: a component's root is its element with the smallest
// raster (C-order) index, roots are numbered 1..N in increasing index, so every component is
// numbered in raster order of its first voxel. That is scipy.ndimage.label's numbering, and it
// does not depend on the order in which unions happen (thread count, CPU or GPU).
#pragma once

#include <cstdint>

#include "medseg/common.h"

namespace medseg::cc {

// A neighbour offset (dz, dy, dx) in a 3-D volume (2-D inputs are volumes with one slice).
struct Offset3 {
    int dz, dy, dx;
};

// Connectivity 6 / 18 / 26 keeps the offsets with at most 1 / 2 / 3 nonzero components.
MSF_HD inline int max_nonzero_axes(int connectivity) {
    return connectivity == 6 ? 1 : (connectivity == 18 ? 2 : 3);
}

MSF_HD inline bool is_neighbour(int connectivity, int dz, int dy, int dx) {
    const int nz = (dz != 0) + (dy != 0) + (dx != 0);
    return nz >= 1 && nz <= max_nonzero_axes(connectivity);
}

// The neighbours that come before the voxel in raster order (half of the neighbourhood:
// 3, 9 or 13 offsets). Writes them to out (room for 13) and returns how many.
MSF_HD inline int backward_neighbours(int connectivity, Offset3* out) {
    int n = 0;
    for (int dz = -1; dz <= 0; ++dz)
        for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
                const bool before = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
                if (before && is_neighbour(connectivity, dz, dy, dx)) out[n++] = Offset3{dz, dy, dx};
            }
    return n;
}

// A neighbouring earlier row (z + dz, y + dy) and how far along x a run may reach into it:
// tolerance 1 when the diagonal (dx = +-1) neighbours in that row are connected, else 0.
struct RowNeighbour {
    int dz, dy, tolerance;
};

// The earlier rows a run connects to (row (0, 0) itself is the run). Returns how many (<= 4).
MSF_HD inline int backward_rows(int connectivity, RowNeighbour* out) {
    int n = 0;
    for (int dz = -1; dz <= 0; ++dz)
        for (int dy = -1; dy <= 1; ++dy) {
            if (dz == 0 && dy >= 0) continue;
            if (is_neighbour(connectivity, dz, dy, 0))
                out[n++] = RowNeighbour{dz, dy, is_neighbour(connectivity, dz, dy, 1) ? 1 : 0};
            else if (is_neighbour(connectivity, dz, dy, 1))
                out[n++] = RowNeighbour{dz, dy, 1};   // not reached for 6/18/26; kept for completeness
        }
    return n;
}

// Runs [a_begin, a_end) and [b_begin, b_end) of neighbouring rows touch with this tolerance.
MSF_HD inline bool runs_touch(int64_t a_begin, int64_t a_end, int64_t b_begin, int64_t b_end, int tolerance) {
    return b_begin < a_end + tolerance && a_begin < b_end + tolerance;
}

// Union-find with "smaller index is the root": find with path halving, and union that links the
// larger root below the smaller one. parent[i] <= i always holds, which the numbering relies on.
template <typename Index>
inline Index find_root(Index* parent, Index i) {
    while (parent[i] != i) {
        const Index grand = parent[parent[i]];
        parent[i] = grand;
        i = grand;
    }
    return i;
}

template <typename Index>
inline void unite(Index* parent, Index a, Index b) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
}

// Final numbering in one ascending sweep (valid because parent[i] <= i): a root gets the next
// number, any other element the number its parent already received. Overwrites parent with
// labels 1..N and returns N. Stops at max_label + 1 so callers can report an overflow.
template <typename Index>
inline int64_t number_in_raster_order(Index* parent, int64_t n, int64_t max_label) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) {
        const Index p = parent[i];
        if (p == static_cast<Index>(i)) {
            if (++count > max_label) return count;
            parent[i] = static_cast<Index>(count);
        } else {
            parent[i] = parent[p];
        }
    }
    return count;
}

}  // namespace medseg::cc
