// medseg_fast._C_cuda: host-compiled bindings of the CUDA drivers (nvcc never sees pybind11).
// Importing it needs no GPU: the CUDA runtime is linked statically and loads the driver lazily.
#include <pybind11/numpy.h>

#include "../cuda/intensity_cuda.h"
#include "convert.h"

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

PYBIND11_MODULE(_C_cuda, m) {
    m.doc() = "medseg_fast CUDA kernels";
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
