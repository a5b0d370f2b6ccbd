// Index and weight math of sliding-window inference, shared by the CPU and CUDA drivers.
//
// Every volume is seen as 5-D (batch, channel, z, y, x); 2-D images get a leading z axis of 1.
// The windows of one image form a Cartesian grid: per-axis ascending origin lists (origins may be
// negative when the image is smaller than the patch, i.e. virtual zero padding), flattened in
// raster order with the first axis slowest, as MONAI's dense_patch_slices and nnU-Net's step loops
// do. A batch of B images has B * windows() windows; window i belongs to image i / windows().
//
// Blending: acc[b, k, v] = sum over windows covering v, in window order, of patch[k, v - o] * imp[v - o],
// and the result is acc / W with W[v] = sum over the same windows of imp[v - o]. W never has to be
// stored: weight_sum() recomputes it from the grid, adding in the same window order as the
// accumulation (which is also the order MONAI builds its count map in).
#pragma once

#include <cstdint>

#include "medseg/common.h"

namespace medseg {

struct SwGrid {
    int64_t image[3];           // image extents (z, y, x)
    int64_t patch[3];           // patch extents
    int64_t count[3];           // number of origins per axis
    const int64_t* origins[3];  // per-axis ascending origins (host or device memory, as the driver needs)

    MSF_HD int64_t windows() const { return count[0] * count[1] * count[2]; }
    MSF_HD int64_t patch_voxels() const { return patch[0] * patch[1] * patch[2]; }
};

// The importance map of a plan. When `scale` is given the map is separable up to a floor,
// imp[z, y, x] = max(scale[z * patch_y + y] * row[x], floor) bit for bit (MONAI's Gaussian and the
// constant map; the plan checks this), and the CPU kernels read one row and a scalar per (z, y)
// instead of the full 3-D map; otherwise (and always on the GPU) `map` (contiguous,
// patch-shaped) is read.
struct SwImportance {
    const float* map = nullptr;
    const float* scale = nullptr;
    const float* row = nullptr;
    float floor = 0.0f;
};

// Origin (z, y, x) of window w (0 <= w < windows()) of one image, raster order, x fastest.
MSF_HD inline void window_origin(const SwGrid& g, int64_t w, int64_t origin[3]) {
    const int64_t ix = w % g.count[2];
    w /= g.count[2];
    const int64_t iy = w % g.count[1];
    const int64_t iz = w / g.count[1];
    origin[0] = g.origins[0][iz];
    origin[1] = g.origins[1][iy];
    origin[2] = g.origins[2][ix];
}

// Per-axis indices (iz, iy, ix) of window w of one image.
MSF_HD inline void window_indices(const SwGrid& g, int64_t w, int64_t index[3]) {
    index[2] = w % g.count[2];
    w /= g.count[2];
    index[1] = w % g.count[1];
    index[0] = w / g.count[1];
}

// Along one axis: is window i the first / the last window (in order) that covers coordinate c?
// The first window covering a voxel in raster order is first on every axis, and likewise the last.
// When all windows are added in order, the first may assign instead of add (no zeroed accumulator)
// and the last may divide by the weight sum at once (no separate finalize pass).
MSF_HD inline bool first_cover(const int64_t* o, int64_t i, int64_t patch, int64_t c) {
    return i == 0 || o[i - 1] + patch <= c;
}
MSF_HD inline bool last_cover(const int64_t* o, int64_t n, int64_t i, int64_t c) {
    return i == n - 1 || o[i + 1] > c;
}

// Indices [first, last) of the origins o (ascending, length n) whose window [o, o + patch) covers c.
MSF_HD inline void covering_origins(const int64_t* o, int64_t n, int64_t patch, int64_t c, int64_t& first,
                                    int64_t& last) {
    // first: smallest i with o[i] + patch > c; last: smallest i with o[i] > c.
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (o[mid] + patch > c) hi = mid; else lo = mid + 1;
    }
    first = lo;
    hi = n;
    while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (o[mid] > c) hi = mid; else lo = mid + 1;
    }
    last = lo;
}

// One weighted contribution, rounded as "product, then sum" (no fused multiply-add), which is the
// arithmetic of `out += p * w` in PyTorch/MONAI; identical on CPU and GPU.
MSF_HD inline float blend_add(float acc, float value, float weight) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(acc, __fmul_rn(value, weight));
#else
    return acc + value * weight;   // x86-64 builds have no FMA unless -march asks for it
#endif
}

MSF_HD inline float plain_add(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

// Sum of the importance map over every window that covers voxel (z, y, x) of the image, added in
// window (raster) order starting from 0. `imp` is the contiguous patch-shaped importance map.
MSF_HD inline float weight_sum(const SwGrid& g, const float* imp, int64_t z, int64_t y, int64_t x) {
    int64_t z0, z1, y0, y1, x0, x1;
    covering_origins(g.origins[0], g.count[0], g.patch[0], z, z0, z1);
    covering_origins(g.origins[1], g.count[1], g.patch[1], y, y0, y1);
    covering_origins(g.origins[2], g.count[2], g.patch[2], x, x0, x1);
    float sum = 0.0f;
    for (int64_t iz = z0; iz < z1; ++iz) {
        const int64_t pz = z - g.origins[0][iz];
        for (int64_t iy = y0; iy < y1; ++iy) {
            const float* row = imp + (pz * g.patch[1] + (y - g.origins[1][iy])) * g.patch[2];
            for (int64_t ix = x0; ix < x1; ++ix) sum = plain_add(sum, row[x - g.origins[2][ix]]);
        }
    }
    return sum;
}

// Probability of one voxel from its blended sum; voxels no window reached (weight 0) become 0.
// Geometry of an accumulator: `batch` images of `channels` channels over the image box
// [origin, origin + shape) (the whole image, or a slab of it when streaming). With wrap[a] > 0
// the accumulator is a ring along axis a: image coordinate c lives at index c % wrap[a], so a
// slab can stream through the volume without moving memory (wrap[2] is always 0).
struct SwRegion {
    int64_t batch;
    int64_t channels;
    int64_t origin[3];
    int64_t shape[3];
    int64_t wrap[3];
    // In-order streaming flags (see first_cover): the first covering window assigns, the last divides.
    int assign_first;
    int divide_last;

    // Accumulator index along axis a of region-relative coordinate rel.
    MSF_HD int64_t index(int a, int64_t rel) const {
        return wrap[a] > 0 ? (rel + origin[a]) % wrap[a] : rel;
    }
};

MSF_HD inline float normalize_blend(float acc, float weight) {
    // Select, then divide unconditionally: the same values as `weight > 0 ? acc / weight : 0`, but
    // without control flow, so CPU row loops vectorize.
    const bool covered = weight > 0.0f;
    const float q = acc / (covered ? weight : 1.0f);
    return covered ? q : 0.0f;
}

// Running argmax over channels with the first maximum winning and NaN treated as the largest
// value (numpy.argmax / torch.argmax semantics).
MSF_HD inline bool argmax_takes(float candidate, float best) {
    if (best != best) return false;          // a NaN already won
    if (candidate != candidate) return true;  // first NaN wins
    return candidate > best;
}

}  // namespace medseg
