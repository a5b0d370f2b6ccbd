// How drivers receive arrays: a raw address, the element type and element strides.
// The shared extents live in a Layout (all arrays of one call have the same shape).
#pragma once

#include <cstdint>

#include "medseg/common.h"
#include "medseg/strided.h"

namespace medseg {

struct ArrayArg {
    uintptr_t ptr = 0;
    DType dtype = DType::Float32;
    Strides strides;

    template <typename T> T* data() const { return reinterpret_cast<T*>(ptr); }
    bool present() const { return ptr != 0; }
};

// Statistics of the selected voxels in double precision, reduced in a fixed block order so the
// result is the same for any thread count.
struct Moments {
    int64_t count = 0;       // selected, non-NaN voxels
    int64_t nan_count = 0;   // selected NaN voxels
    double mean = 0.0;
    double m2 = 0.0;         // sum of squared deviations from the mean
    double min = 0.0;
    double max = 0.0;
};

}  // namespace medseg
