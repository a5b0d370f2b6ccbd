// CPU drivers of the connected-components family (declarations shared with the bindings).
//
// Labeling is run-based: each row (fixed z, y) is cut into runs of equal foreground value,
// runs are the union-find elements (indexed in raster order), slabs of rows are merged in
// parallel, the slab faces afterwards, and the roots are numbered in raster order. The runs
// then serve every output (int32 labels, filtered masks, sizes) without a label volume.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "medseg/array_arg.h"

namespace medseg::cpu {

struct Run {
    uint32_t begin, end;   // [begin, end) along x
};

// A growable array of trivially copyable elements that never value-initializes: growth uses
// realloc (large blocks are remapped, not copied) and untouched capacity costs no page faults.
template <typename T>
class PodArray {
public:
    PodArray() = default;
    PodArray(const PodArray&) = delete;
    PodArray& operator=(const PodArray&) = delete;
    PodArray(PodArray&& o) noexcept : p_(o.p_), n_(o.n_), cap_(o.cap_) { o.p_ = nullptr, o.n_ = o.cap_ = 0; }
    PodArray& operator=(PodArray&& o) noexcept {
        if (this != &o) {
            std::free(p_);
            p_ = o.p_, n_ = o.n_, cap_ = o.cap_;
            o.p_ = nullptr, o.n_ = o.cap_ = 0;
        }
        return *this;
    }
    ~PodArray() { std::free(p_); }

    // Makes room for `extra` more elements past size() (amortized doubling).
    void reserve_more(size_t extra) {
        if (n_ + extra <= cap_) return;
        size_t cap = std::max(std::max(cap_ * 2, n_ + extra), size_t(1024));
        T* p = static_cast<T*>(std::realloc(p_, cap * sizeof(T)));
        if (p == nullptr) throw std::bad_alloc();
        p_ = p, cap_ = cap;
    }
    // Sets the size; new elements are uninitialized.
    void resize_uninit(size_t n) {
        if (n > n_) reserve_more(n - n_);
        n_ = n;
    }
    void release() {
        std::free(p_);
        p_ = nullptr, n_ = cap_ = 0;
    }
    T* data() { return p_; }
    const T* data() const { return p_; }
    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    T& operator[](size_t i) { return p_[i]; }
    const T& operator[](size_t i) const { return p_[i]; }

private:
    T* p_ = nullptr;
    size_t n_ = 0, cap_ = 0;
};

struct RunLabeling {
    Layout layout;                 // always 3-D: (D, H, W); 2-D inputs have D = 1
    ArrayArg input;                // the labeled array (caller keeps it alive)
    int64_t background = 0;
    bool invert = false;           // foreground = (value == background) instead of !=
    std::vector<int64_t> row_start;   // runs of row r: [row_start[r], row_start[r + 1])
    PodArray<Run> runs;
    PodArray<uint32_t> label;         // per run, 1..count
    std::vector<uint32_t> root_run;   // per label - 1: the run holding the first voxel
    int64_t count = 0;
};

// Labels `input` (3-D layout). Throws std::overflow_error if more than max_label components.
std::unique_ptr<RunLabeling> label_runs(const Layout& layout, const ArrayArg& input, int connectivity,
                                        int64_t background, bool invert, int64_t max_label);

// Smallest slab in voxels given its own thread (default 2^20; <= 0 restores it). For tests.
void set_min_slab_voxels(int64_t voxels);

// out (int32, same layout) = component labels, 0 outside. zeroed: out already holds zeros (a
// fresh calloc'd array), so only the runs are written and untouched pages stay unfaulted.
void write_labels(const RunLabeling& rl, const ArrayArg& out, bool zeroed = false);

// out (bool/uint8) = keep[label] inside runs, outside_value elsewhere. keep has count + 1 entries.
// zeroed (out already zero; used when outside_value is 0): only kept runs are written.
void write_mask(const RunLabeling& rl, const ArrayArg& out, const uint8_t* keep, uint8_t outside_value,
                bool zeroed = false);

// out (the input's dtype) = input inside kept components, background elsewhere.
// zeroed (out already zero; used when the background is 0): only kept runs are written.
void write_filtered(const RunLabeling& rl, const ArrayArg& out, const uint8_t* keep, bool zeroed = false);

// sizes[0..count] (sizes[0] = 0) in voxels.
void component_sizes(const RunLabeling& rl, int64_t* sizes);

// flags[0..count]: 1 when the component touches the volume border (z faces only if use_z).
void border_flags(const RunLabeling& rl, uint8_t* flags, bool use_z);

// Linear (C-order) index of each component's first voxel, for label 1..count (first[0] unused).
void first_voxels(const RunLabeling& rl, int64_t* first);

// Statistics of an integer label image with labels in [0, max_label]: count, bbox
// (min and max per axis) and coordinate sums per label, exact and thread-count independent.
// counts: max_label + 1; mins / maxs / sums: (max_label + 1) x 3 (z, y, x), row-major.
// Label maps value by value (components_values.cpp): counts[v] = voxels whose value truncates to v
// (v in 0..max_value; any other value throws), and out[i] = table[trunc(in[i])] in out's dtype.
void value_counts(const Layout& layout, const ArrayArg& in, int64_t max_value, int64_t* counts);
void apply_value_table(const Layout& layout, const ArrayArg& in, const double* table, int64_t max_value,
                       const ArrayArg& out);

void label_statistics(const Layout& layout, const ArrayArg& labels, int64_t max_label, int64_t* counts,
                      int64_t* mins, int64_t* maxs, double* sums);

}  // namespace medseg::cpu
