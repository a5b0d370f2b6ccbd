// Bindings of the CUDA sliding-window drivers: the CPU signatures (same typed structs) plus a stream.
// The GPU kernels read the importance map itself (SwImportance::map), never its separable factors.
#include "../cuda/sliding_window_cuda.h"
#include "sliding_window_args.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_sliding_window_cuda(py::module_& m) {
    bind_sliding_window_types(m);

    m.def(
        "sw_gather",
        [](const SwGrid& grid, const ArrayDesc& x, int64_t batch, int64_t channels, const ArrayDesc& out,
           int64_t first, int64_t n, uintptr_t stream) {
            cuda::sw_gather(grid, make_strided(x), batch, channels, make_strided(out), first, n, stream);
        },
        py::arg("grid"), py::arg("x"), py::arg("batch"), py::arg("channels"), py::arg("out"), py::arg("first"),
        py::arg("n"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_scatter_add",
        [](const SwGrid& grid, const SwImportance& importance, const ArrayDesc& patches, const ArrayDesc& acc,
           const SwRegion& region, const ArrayDesc& weights, int64_t first, int64_t n, uintptr_t stream) {
            cuda::sw_scatter_add(grid, importance.map, make_strided(patches), make_strided(acc), region,
                                 make_strided(weights), first, n, stream);
        },
        py::arg("grid"), py::arg("importance"), py::arg("patches"), py::arg("acc"), py::arg("region"),
        py::arg("weights"), py::arg("first"), py::arg("n"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "sw_finalize",
        [](const SwGrid& grid, const SwImportance& importance, const ArrayDesc& acc, const SwRegion& region,
           const ArrayDesc& weights, const ArrayDesc& out, bool argmax, uintptr_t stream) {
            cuda::sw_finalize(grid, importance.map, make_strided(acc), region, make_strided(weights),
                              make_strided(out), argmax, stream);
        },
        py::arg("grid"), py::arg("importance"), py::arg("acc"), py::arg("region"), py::arg("weights"),
        py::arg("out"), py::arg("argmax"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
