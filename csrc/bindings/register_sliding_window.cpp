// Bindings of the CPU sliding-window kernels. Validation happens in Python (medseg_fast._sliding_kernels);
// the grid, region and importance map arrive as the typed structs of sliding_window_args.h.
#include "../cpu/sliding_window_cpu.h"
#include "sliding_window_args.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_sliding_window(py::module_& m) {
    bind_sliding_window_types(m);

    m.def(
        "sw_gather",
        [](const SwGrid& grid, const ArrayDesc& x, int64_t batch, int64_t channels, const ArrayDesc& out,
           int64_t first, int64_t n) {
            cpu::sw_gather(grid, make_strided(x), batch, channels, make_strided(out), first, n);
        },
        py::arg("grid"), py::arg("x"), py::arg("batch"), py::arg("channels"), py::arg("out"), py::arg("first"),
        py::arg("n"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_scatter_add",
        [](const SwGrid& grid, const SwImportance& importance, const ArrayDesc& patches, const ArrayDesc& acc,
           const SwRegion& region, const ArrayDesc& weights, int64_t first, int64_t n, const ArrayDesc& labels,
           int64_t block) {
            cpu::sw_scatter_add(grid, importance, make_strided(patches), make_strided(acc), region,
                                make_strided(weights), first, n, make_strided(labels), block);
        },
        py::arg("grid"), py::arg("importance"), py::arg("patches"), py::arg("acc"), py::arg("region"),
        py::arg("weights"), py::arg("first"), py::arg("n"), py::arg("labels") = ArrayDesc{0, "uint8", {}},
        py::arg("block") = 0, py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_unblock",
        [](const ArrayDesc& acc, int64_t planes, int64_t ny, int64_t nx, int64_t block) {
            cpu::sw_unblock(make_strided(acc), planes, ny, nx, block);
        },
        py::arg("acc"), py::arg("planes"), py::arg("ny"), py::arg("nx"), py::arg("block"),
        py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_finalize",
        [](const SwGrid& grid, const SwImportance& importance, const ArrayDesc& acc, const SwRegion& region,
           const ArrayDesc& weights, const ArrayDesc& out, bool argmax) {
            cpu::sw_finalize(grid, importance, make_strided(acc), region, make_strided(weights), make_strided(out),
                             argmax);
        },
        py::arg("grid"), py::arg("importance"), py::arg("acc"), py::arg("region"), py::arg("weights"),
        py::arg("out"), py::arg("argmax"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
