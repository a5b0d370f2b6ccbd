// medseg_fast._C: the CPU extension. Each kernel family registers itself.
#include <pybind11/pybind11.h>

#include "medseg/parallel.h"

namespace py = pybind11;

namespace medseg::bindings {
void register_intensity(py::module_& m);
void register_components(py::module_& m);
void register_resample(py::module_& m);
void register_sliding_window(py::module_& m);
void register_distance(py::module_& m);
void register_losses(py::module_& m);
void register_memory(py::module_& m);
}

PYBIND11_MODULE(_C, m) {
    m.doc() = "medseg_fast CPU kernels";
    m.def("get_num_threads", &medseg::get_num_threads, "Threads used by the CPU kernels.");
    m.def("set_num_threads", &medseg::set_num_threads, py::arg("n"),
          "Set the CPU kernel thread count (n <= 0 restores the default).");
#if defined(__clang__)
    m.attr("compiler") = "clang " __clang_version__;
#elif defined(__GNUC__)
    m.attr("compiler") = "gcc " __VERSION__;
#else
    m.attr("compiler") = "unknown";
#endif
    m.attr("cxx_standard") = static_cast<long>(__cplusplus);
    medseg::bindings::register_intensity(m);
    medseg::bindings::register_components(m);
    medseg::bindings::register_resample(m);
    medseg::bindings::register_sliding_window(m);
    medseg::bindings::register_distance(m);
    medseg::bindings::register_losses(m);
    medseg::bindings::register_memory(m);
}
