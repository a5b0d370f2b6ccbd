// CUDA drivers of the intensity family. Plain C++ declarations: included by the nvcc-compiled
// drivers and by the host-compiled bindings (which never see CUDA headers).
#pragma once

#include <cstdint>
#include <vector>

#include "medseg/array_arg.h"
#include "medseg/intensity.h"

namespace medseg::cuda {

void window_apply(const Layout& layout, const ArrayArg& in, const ArrayArg& out, int64_t out_window_stride,
                  const std::vector<WindowParams>& windows, const ArrayArg& mask, double outside_value,
                  uintptr_t stream);

std::vector<uint64_t> histogram16(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, uintptr_t stream);

Moments moments(const Layout& layout, const ArrayArg& in, const ArrayArg& mask, double clamp_lo, double clamp_hi,
                uintptr_t stream);

// Writes the values to host memory at out_values (in the input's dtype).
void order_statistics(const Layout& layout, const ArrayArg& in, const ArrayArg& mask,
                      const std::vector<int64_t>& ranks, uintptr_t out_values, uintptr_t stream);

int device_count();
int runtime_version();

}  // namespace medseg::cuda
