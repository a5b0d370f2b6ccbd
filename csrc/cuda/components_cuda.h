// CUDA drivers of the connected-components family. Plain C++ declarations: included by the
// nvcc-compiled driver and by the host-compiled bindings (which never see CUDA headers).
#pragma once

#include <cstdint>

#include "medseg/array_arg.h"

namespace medseg::cuda {

// Labels `in` (3-D layout; 2-D inputs have D = 1) into the C-contiguous int32 array `out`:
// components numbered 1..N in raster order of their first voxel, 0 on the background.
// Returns N; throws std::overflow_error if N > max_label. Synchronizes `stream` to read N.
int64_t label_components(const Layout& layout, const ArrayArg& in, const ArrayArg& out, int connectivity,
                         int64_t background, int64_t max_label, uintptr_t stream);

}  // namespace medseg::cuda
