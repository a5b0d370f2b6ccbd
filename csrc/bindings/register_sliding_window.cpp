// Bindings of the CPU sliding-window kernels. Validation happens in Python (medseg_fast.sliding_window).
#include "../cpu/sliding_window_cpu.h"
#include "sliding_window_args.h"

namespace py = pybind11;

namespace medseg::bindings {
namespace {

// (scale pointer, row pointer, floor) of a separable importance map; a null scale means "use the map".
using FactorsDesc = std::tuple<uintptr_t, uintptr_t, float>;

cpu::SwImportance make_importance(uintptr_t map, const FactorsDesc& factors) {
    cpu::SwImportance imp;
    imp.map = reinterpret_cast<const float*>(map);
    if (std::get<0>(factors) != 0) {
        imp.scale = reinterpret_cast<const float*>(std::get<0>(factors));
        imp.row = reinterpret_cast<const float*>(std::get<1>(factors));
        imp.floor = std::get<2>(factors);
    }
    return imp;
}

}  // namespace

void register_sliding_window(py::module_& m) {
    m.def(
        "sw_gather",
        [](const GridDesc& grid, const ArrayDesc& x, int64_t batch, int64_t channels, const ArrayDesc& out,
           int64_t first, int64_t n) {
            cpu::sw_gather(make_grid(grid), make_strided(x), batch, channels, make_strided(out), first, n);
        },
        py::arg("grid"), py::arg("x"), py::arg("batch"), py::arg("channels"), py::arg("out"), py::arg("first"),
        py::arg("n"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_scatter_add",
        [](const GridDesc& grid, uintptr_t imp, const ArrayDesc& patches, const ArrayDesc& acc,
           const RegionDesc& region, const ArrayDesc& weights, int64_t first, int64_t n, const FactorsDesc& factors,
           const ArrayDesc& labels, int64_t block) {
            cpu::sw_scatter_add(make_grid(grid), make_importance(imp, factors), make_strided(patches),
                                make_strided(acc), make_region(region), make_strided(weights), first, n,
                                make_strided(labels), block);
        },
        py::arg("grid"), py::arg("importance"), py::arg("patches"), py::arg("acc"), py::arg("region"),
        py::arg("weights"), py::arg("first"), py::arg("n"), py::arg("factors") = FactorsDesc{0, 0, 0.0f},
        py::arg("labels") = ArrayDesc{0, "uint8", {}}, py::arg("block") = 0, py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_unblock",
        [](const ArrayDesc& acc, int64_t planes, int64_t ny, int64_t nx, int64_t block) {
            cpu::sw_unblock(make_strided(acc), planes, ny, nx, block);
        },
        py::arg("acc"), py::arg("planes"), py::arg("ny"), py::arg("nx"), py::arg("block"),
        py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_finalize",
        [](const GridDesc& grid, uintptr_t imp, const ArrayDesc& acc, const RegionDesc& region,
           const ArrayDesc& weights, const ArrayDesc& out, bool argmax, const FactorsDesc& factors) {
            cpu::sw_finalize(make_grid(grid), make_importance(imp, factors), make_strided(acc),
                             make_region(region), make_strided(weights), make_strided(out), argmax);
        },
        py::arg("grid"), py::arg("importance"), py::arg("acc"), py::arg("region"), py::arg("weights"),
        py::arg("out"), py::arg("argmax"), py::arg("factors") = FactorsDesc{0, 0, 0.0f},
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
