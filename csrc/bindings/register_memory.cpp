// Bindings of the host memory helpers (medseg_fast._backend.allocate uses them).
#include <pybind11/pybind11.h>

#include "../cpu/memory_cpu.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_memory(py::module_& m) {
    m.def("advise_huge_pages", &cpu::advise_huge_pages, py::arg("ptr"), py::arg("nbytes"),
          "Ask for transparent huge pages on the 2 MiB-aligned interior of an untouched host range "
          "(Linux madvise(MADV_HUGEPAGE)); returns the bytes advised, 0 where unsupported or refused.");
}

}  // namespace medseg::bindings
