// Bindings of the CUDA sliding-window drivers; same signatures as the CPU ones plus a stream.
#include "../cuda/sliding_window_cuda.h"
#include "sliding_window_args.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_sliding_window_cuda(py::module_& m) {
    m.def(
        "sw_gather",
        [](const GridDesc& grid, const ArrayDesc& x, int64_t batch, int64_t channels, const ArrayDesc& out,
           int64_t first, int64_t n, uintptr_t stream) {
            cuda::sw_gather(make_grid(grid), make_strided(x), batch, channels, make_strided(out), first, n, stream);
        },
        py::arg("grid"), py::arg("x"), py::arg("batch"), py::arg("channels"), py::arg("out"), py::arg("first"),
        py::arg("n"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_scatter_add",
        [](const GridDesc& grid, uintptr_t imp, const ArrayDesc& patches, const ArrayDesc& acc,
           const RegionDesc& region, const ArrayDesc& weights, int64_t first, int64_t n, uintptr_t stream) {
            cuda::sw_scatter_add(make_grid(grid), reinterpret_cast<const float*>(imp), make_strided(patches),
                                 make_strided(acc), make_region(region), make_strided(weights), first, n, stream);
        },
        py::arg("grid"), py::arg("importance"), py::arg("patches"), py::arg("acc"), py::arg("region"),
        py::arg("weights"), py::arg("first"), py::arg("n"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_finalize",
        [](const GridDesc& grid, uintptr_t imp, const ArrayDesc& acc, const RegionDesc& region,
           const ArrayDesc& weights, const ArrayDesc& out, bool argmax, uintptr_t stream) {
            cuda::sw_finalize(make_grid(grid), reinterpret_cast<const float*>(imp), make_strided(acc),
                              make_region(region), make_strided(weights), make_strided(out), argmax, stream);
        },
        py::arg("grid"), py::arg("importance"), py::arg("acc"), py::arg("region"), py::arg("weights"),
        py::arg("out"), py::arg("argmax"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
