// CUDA drivers of the resampling family. Plain C++ declarations: included by the nvcc-compiled
// drivers and by the host-compiled bindings (which never see CUDA headers). Same semantics as
// csrc/cpu/resample_cpu.h; every call is asynchronous on `stream`.
#pragma once

#include <cstdint>

#include "medseg/array_arg.h"
#include "medseg/resample.h"

namespace medseg::cuda {

void resample(const ResampleSpec& spec, const ArrayArg& in, const ArrayArg& out, uintptr_t stream);

void resample_nearest(const int64_t* in_shape, const int64_t* out_shape, const ArrayArg& in, const ArrayArg& out,
                      uintptr_t stream);

void resample_labels(const int64_t* in_shape, const int64_t* out_shape, const int* orders, const ArrayArg& in,
                     const ArrayArg& out, uintptr_t stream);

// Fused resample + argmax over channels, as cpu::resample_argmax (labels uint8, int16 or int32).
void resample_argmax(const ResampleSpec& spec, const ArrayArg& in, const ArrayArg& out, uintptr_t stream);

}  // namespace medseg::cuda
