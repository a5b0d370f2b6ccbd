// medseg_fast._C_cuda: host-compiled bindings of the CUDA drivers (nvcc never sees pybind11).
// Importing it needs no GPU: the CUDA runtime is linked statically and loads the driver lazily.
// The same units also build medseg_fast._C_cuda_emu, the drivers run on the CPU under HIP-CPU
// (MEDSEG_CUDA_EMULATION, tests only: csrc/emu/README.md); it takes host addresses.
#include <pybind11/numpy.h>

#include "../cuda/intensity_cuda.h"
#include "convert.h"

#include <string>

namespace py = pybind11;
using namespace medseg;
using namespace medseg::bindings;

namespace medseg::bindings {
void register_intensity_cuda(py::module_& m);
void register_components_cuda(py::module_& m);
void register_resample_cuda(py::module_& m);
void register_sliding_window_cuda(py::module_& m);
void register_distance_cuda(py::module_& m);
void register_losses_cuda(py::module_& m);
}

#ifndef MEDSEG_CUDA_MODULE_NAME
#define MEDSEG_CUDA_MODULE_NAME _C_cuda
#endif

#ifdef MEDSEG_CUDA_EMULATION
#include "../emu/emu_control.h"

namespace {
void register_emulation(py::module_& m) {
    m.attr("emulated") = true;
    m.def(
        "_set_launch_limits",
        [](int max_grid, int max_block) {
            if (max_grid < 0 || max_block < 0)
                throw std::invalid_argument("launch limits must be >= 0 (0: as the driver asks), got max_grid=" +
                                            std::to_string(max_grid) + ", max_block=" + std::to_string(max_block));
            msf_emu::launch_limits() = {max_grid, max_block};
        },
        py::arg("max_grid"), py::arg("max_block"),
        "Cap the blocks per launch (fixed_grid) and threads per block (block_size); 0 lifts a cap.");
    m.def("_launch_limits", [] { return std::make_pair(msf_emu::launch_limits().max_grid, msf_emu::launch_limits().max_block); });
    m.def("_launches", &msf_emu::launches, "Kernels launched so far in this process.");
    m.def("_synchronize", &msf_emu::synchronize, py::call_guard<py::gil_scoped_release>());
    m.def("_probe_atomics", &msf_emu::probe_atomics, py::arg("raw"));
    m.def("_probe_malloc_async", &msf_emu::probe_malloc_async, py::arg("n"));
    m.def("_probe_stream_order", &msf_emu::probe_stream_order, py::arg("tries"), py::arg("n"), py::arg("raw"),
          py::call_guard<py::gil_scoped_release>());
}
}  // namespace
#endif

PYBIND11_MODULE(MEDSEG_CUDA_MODULE_NAME, m) {
#ifdef MEDSEG_CUDA_EMULATION
    m.doc() = "medseg_fast CUDA kernels run on the CPU by HIP-CPU (tests only)";
    register_emulation(m);
#else
    m.doc() = "medseg_fast CUDA kernels";
#endif
    m.def("device_count", &cuda::device_count);
    m.def("runtime_version", &cuda::runtime_version);
#ifdef MEDSEG_CUDA_ARCHS
    m.attr("architectures") = MEDSEG_CUDA_ARCHS;
#else
    m.attr("architectures") = "";
#endif
#ifdef MEDSEG_CUDA_COMPILER_VERSION
    m.attr("compiler_version") = MEDSEG_CUDA_COMPILER_VERSION;
#else
    m.attr("compiler_version") = "";
#endif
    register_intensity_cuda(m);
    register_components_cuda(m);
    register_resample_cuda(m);
    register_sliding_window_cuda(m);
    register_distance_cuda(m);
    register_losses_cuda(m);
}
