// CPU drivers of the metrics family (declarations shared with the bindings).
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "medseg/array_arg.h"
#include "medseg/dispatch.h"
#include "medseg/metrics.h"

namespace medseg::cpu {

// Which voxels belong to which class: binary (nonzero -> class 0) or label values `classes`.
struct ClassSpec {
    bool binary = true;
    std::vector<int64_t> classes;   // label value of each class (label mode)
    int num_classes() const { return binary ? 1 : static_cast<int>(classes.size()); }
};

// Per-class overlap counts and the bounding box of the union of both masks, one pass.
struct ClassBox {
    int64_t pred = 0, gt = 0, both = 0;
    int64_t lo[3] = {INT64_MAX, INT64_MAX, INT64_MAX};
    int64_t hi[3] = {-1, -1, -1};
    bool empty() const { return hi[0] < 0; }
};

namespace detail {

// Label value -> class index (-1: not a requested class). Dense table for compact label ranges.
class ClassLookup {
public:
    explicit ClassLookup(const ClassSpec& spec) : binary_(spec.binary) {
        if (binary_ || spec.classes.empty()) return;
        lo_ = *std::min_element(spec.classes.begin(), spec.classes.end());
        const int64_t hi = *std::max_element(spec.classes.begin(), spec.classes.end());
        if (hi - lo_ < (int64_t(1) << 22)) {
            dense_.assign(static_cast<size_t>(hi - lo_ + 1), -1);
            for (size_t i = 0; i < spec.classes.size(); ++i) dense_[spec.classes[i] - lo_] = static_cast<int>(i);
        } else {
            for (size_t i = 0; i < spec.classes.size(); ++i) sparse_[spec.classes[i]] = static_cast<int>(i);
        }
    }
    int operator()(int64_t value) const {
        if (binary_) return value != 0 ? 0 : -1;
        if (!dense_.empty()) {
            const int64_t i = value - lo_;
            return (i >= 0 && i < static_cast<int64_t>(dense_.size())) ? dense_[i] : -1;
        }
        const auto it = sparse_.find(value);
        return it == sparse_.end() ? -1 : it->second;
    }

private:
    bool binary_;
    int64_t lo_ = 0;
    std::vector<int> dense_;
    std::unordered_map<int64_t, int> sparse_;
};

// Python hands over integer or bool arrays (floating masks and label maps are converted there).
template <typename S> inline int64_t label_value(const S& v) { return static_cast<int64_t>(v); }
template <> inline int64_t label_value<bool>(const bool& v) { return v ? 1 : 0; }

// Label maps reach the kernels as integer or bool arrays (Python converts floating maps), so
// only those types are instantiated.
template <typename Fn>
decltype(auto) dispatch_labels(DType dtype, Fn&& fn) {
    return dispatch_integer("label maps", dtype, std::forward<Fn>(fn));
}

}  // namespace detail

// One-hot reading of a (B, K, N) array x (strides[0] items, strides[1] channels, voxels
// contiguous): counts (B, K, 3) = [nonzero, equal to 1, zero] per (item, channel); with `labels`
// (B * N int32), label b * K + k + 1 of the channel equal to 1 (0: none) and conflicts[b] = the
// 1s of item b beyond the first in their voxel (nonzero: channels not exclusive). float32_ones: float64 values compare as float32.
void onehot_summary(int64_t B, int64_t K, int64_t N, const ArrayArg& x, bool float32_ones, int64_t* counts,
                    int32_t* labels, int64_t* conflicts);

// layout: 3 axes (Python pads lower-dimensional inputs with leading size-1 axes).
std::vector<ClassBox> class_boxes(const Layout& layout, const ArrayArg& pred, const ArrayArg& gt,
                                  const ClassSpec& spec);

// Surface statistics of every class. `active` = number of trailing axes that are real image axes
// (1-3); padded axes are not eroded and carry no corners. Returns num_classes rows of
// [pred voxels, gt voxels, both, pred surface elements, gt surface elements, query results...].
// path: how surface distances are found, kPathAuto (nearest-neighbour search, EDT when that
// would cost more), or forced kPathNearest / kPathEdt, or kPathAutoSmallBudget (the search
// gives up early and falls back to the EDT). For tests: every path gives the same results.
constexpr int kPathAuto = 0, kPathNearest = 1, kPathEdt = 2, kPathAutoSmallBudget = 3;
std::vector<double> surface_metrics(const Layout& layout, int active, const ArrayArg& pred, const ArrayArg& gt,
                                    const ClassSpec& spec, const double spacing[3], Convention convention,
                                    const std::vector<SurfaceQuery>& queries, int path = kPathAuto);

// confusion[g * k + p] = voxels with gt label g and predicted label p (labels outside [0, k) skipped).
std::vector<int64_t> confusion_matrix(const Layout& layout, const ArrayArg& pred, const ArrayArg& gt, int64_t k);

}  // namespace medseg::cpu
