// Bindings of the CPU connected-components kernels. Validation happens in Python
// (medseg_fast.components); these wrappers only convert descriptors and release the GIL.
#include <pybind11/numpy.h>

#include <limits>
#include <string>

#include "../cpu/components_cpu.h"
#include "convert.h"

namespace py = pybind11;

namespace medseg::bindings {

namespace {

struct PyRuns {
    std::unique_ptr<cpu::RunLabeling> rl;
};

const uint8_t* table_ptr(const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& keep, int64_t count) {
    if (keep.ndim() != 1 || keep.shape(0) != count + 1)
        throw std::invalid_argument("keep table must have count + 1 entries");
    return keep.data();
}

}  // namespace

void register_components(py::module_& m) {
    py::class_<PyRuns>(m, "ComponentRuns", "Run-based labeling of one array (holds runs and labels, not a volume).")
        .def_property_readonly("count", [](const PyRuns& r) { return r.rl->count; })
        .def_property_readonly("num_runs", [](const PyRuns& r) { return static_cast<int64_t>(r.rl->runs.size()); })
        .def("write_labels",
             [](const PyRuns& r, const ArrayDesc& out, bool zeroed) {
                 cpu::write_labels(*r.rl, make_array(out, r.rl->layout), zeroed);
             },
             py::arg("out"), py::arg("zeroed") = false, py::call_guard<py::gil_scoped_release>())
        .def("write_mask",
             [](const PyRuns& r, const ArrayDesc& out, const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& keep,
                uint8_t outside_value, bool zeroed) {
                 const uint8_t* k = table_ptr(keep, r.rl->count);
                 const ArrayArg o = make_array(out, r.rl->layout);
                 py::gil_scoped_release release;
                 cpu::write_mask(*r.rl, o, k, outside_value, zeroed);
             },
             py::arg("out"), py::arg("keep"), py::arg("outside_value"), py::arg("zeroed") = false)
        .def("write_filtered",
             [](const PyRuns& r, const ArrayDesc& out, const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& keep,
                bool zeroed) {
                 const uint8_t* k = table_ptr(keep, r.rl->count);
                 const ArrayArg o = make_array(out, r.rl->layout);
                 py::gil_scoped_release release;
                 cpu::write_filtered(*r.rl, o, k, zeroed);
             },
             py::arg("out"), py::arg("keep"), py::arg("zeroed") = false)
        .def("sizes",
             [](const PyRuns& r) {
                 py::array_t<int64_t> sizes(static_cast<py::ssize_t>(r.rl->count + 1));
                 int64_t* p = sizes.mutable_data();
                 {
                     py::gil_scoped_release release;
                     cpu::component_sizes(*r.rl, p);
                 }
                 return sizes;
             })
        .def("border_flags",
             [](const PyRuns& r, bool use_z) {
                 py::array_t<uint8_t> flags(static_cast<py::ssize_t>(r.rl->count + 1));
                 uint8_t* p = flags.mutable_data();
                 {
                     py::gil_scoped_release release;
                     cpu::border_flags(*r.rl, p, use_z);
                 }
                 return flags;
             },
             py::arg("use_z"))
        .def("first_voxels", [](const PyRuns& r) {
            py::array_t<int64_t> first(static_cast<py::ssize_t>(r.rl->count + 1));
            int64_t* p = first.mutable_data();
            {
                py::gil_scoped_release release;
                cpu::first_voxels(*r.rl, p);
            }
            return first;
        });

    m.def(
        "label_runs",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, int connectivity, int64_t background, bool invert,
           int64_t max_label) {
            const Layout layout = make_layout(shape);
            const ArrayArg a = make_array(in, layout);
            PyRuns r;
            {
                py::gil_scoped_release release;
                r.rl = cpu::label_runs(layout, a, connectivity, background, invert, max_label);
            }
            return r;
        },
        py::arg("shape"), py::arg("x"), py::arg("connectivity"), py::arg("background"), py::arg("invert"),
        py::arg("max_label"));

    m.def("_set_min_slab_voxels", &cpu::set_min_slab_voxels, py::arg("voxels"),
          "Testing hook: smallest slab (voxels) that gets its own thread in the CPU labeler.");

    m.def(
        "label_statistics",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, int64_t max_label) {
            const Layout layout = make_layout(shape);
            const ArrayArg a = make_array(in, layout);
            // max_label + 1 overflowed (signed, UB) for max_label = INT64_MAX; the tables hold 3 * L.
            if (max_label < 0 || max_label > std::numeric_limits<int64_t>::max() / 3 - 1)
                throw py::value_error("max_label must be in 0.." +
                                      std::to_string(std::numeric_limits<int64_t>::max() / 3 - 1) + ", got " +
                                      std::to_string(max_label));
            const py::ssize_t L = static_cast<py::ssize_t>(max_label + 1);
            py::array_t<int64_t> counts(L), mins({L, py::ssize_t(3)}), maxs({L, py::ssize_t(3)});
            py::array_t<double> sums({L, py::ssize_t(3)});
            int64_t *c = counts.mutable_data(), *lo = mins.mutable_data(), *hi = maxs.mutable_data();
            double* s = sums.mutable_data();
            {
                py::gil_scoped_release release;
                cpu::label_statistics(layout, a, max_label, c, lo, hi, s);
            }
            return py::make_tuple(counts, mins, maxs, sums);
        },
        py::arg("shape"), py::arg("labels"), py::arg("max_label"));

    m.def(
        "value_counts",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, int64_t max_value) {
            if (max_value < 0 || max_value > (int64_t(1) << 26))
                throw py::value_error("max_value must be in 0..2**26, got " + std::to_string(max_value));
            const Layout layout = make_layout(shape);
            const ArrayArg a = make_array(in, layout);
            py::array_t<int64_t> counts(static_cast<py::ssize_t>(max_value + 1));
            int64_t* c = counts.mutable_data();
            {
                py::gil_scoped_release release;
                cpu::value_counts(layout, a, max_value, c);
            }
            return counts;
        },
        py::arg("shape"), py::arg("x"), py::arg("max_value"),
        "voxel count of each value 0..max_value (values truncated toward zero) of a label map");

    m.def(
        "apply_value_table",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in,
           const py::array_t<double, py::array::c_style | py::array::forcecast>& table, const ArrayDesc& out) {
            if (table.ndim() != 1 || table.shape(0) < 1 || table.shape(0) > (py::ssize_t(1) << 26) + 1)
                throw py::value_error("table must be 1-D with 1..2**26 + 1 entries");
            const Layout layout = make_layout(shape);
            const ArrayArg a = make_array(in, layout), o = make_array(out, layout);
            const double* t = table.data();
            const int64_t max_value = static_cast<int64_t>(table.shape(0)) - 1;
            py::gil_scoped_release release;
            cpu::apply_value_table(layout, a, t, max_value, o);
        },
        py::arg("shape"), py::arg("x"), py::arg("table"), py::arg("out"),
        "out = table[trunc(x)] voxel by voxel, in out's dtype");
}

}  // namespace medseg::bindings
