// CUDA drivers of the distance family. Plain C++ declarations: included by the nvcc-compiled
// drivers and by the host-compiled bindings (which never see CUDA headers).
#pragma once

#include <cstdint>
#include <vector>

#include "medseg/array_arg.h"

namespace medseg::cuda {

// Same contract as medseg::cpu::distance_transform (out C-contiguous in `layout`), on the
// caller's stream; no host synchronisation.
void distance_transform(const Layout& layout, const ArrayArg& mask, const ArrayArg& out,
                        const std::vector<double>& spacing, bool squared, int virtual_axis, uintptr_t stream);

}  // namespace medseg::cuda
