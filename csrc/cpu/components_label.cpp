// Run-based parallel connected-component labeling (CPU).
//
// 1. Runs: rows are split into slabs, one per thread; each thread cuts its rows into runs of equal
//    foreground value (8 bytes at a time over empty stretches of byte inputs).
// 2. Union: runs are union-find elements in raster order. Each thread merges runs of its slab with
//    the touching runs of earlier rows of the same slab (no sharing, no atomics); then the rows
//    at the slab faces are merged with the previous slab on one thread.
// 3. Numbering: parent[i] <= i, so one ascending sweep numbers roots 1..N in raster order of
//    their first voxel (scipy.ndimage.label's order), for any slab split.
// The row/tolerance table comes from medseg/components.h, shared with the CUDA labeler.
// Run-based labeling follows He, Chao & Suzuki, "A run-based two-scan labeling algorithm",
// IEEE TIP 2008; the slab split and face merge follow the usual parallel union-find scheme.
#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "components_cpu.h"
#include "medseg/components.h"
#include "medseg/dispatch.h"
#include "medseg/parallel.h"

namespace medseg::cpu {

namespace {

// Smallest slab (in voxels) worth a thread; tests lower it to force many slab faces.
int64_t g_min_slab_voxels = int64_t(1) << 20;

template <typename T>
using Stored = std::conditional_t<std::is_same<T, bool>::value, uint8_t, T>;

template <typename T>
struct Scanner {
    const T* base;
    int64_t s0, s1, s2;
    int64_t W;
    T bg;
    bool invert;

    const T* row_ptr(int64_t z, int64_t y) const { return base + z * s0 + y * s1; }

    bool fg(T v) const { return invert ? (v == bg) : (v != bg); }

    bool is_fg(T v) const { return invert ? (v == bg) : (v != bg); }

    // One voxel of the branch-free run cutter: a boundary before x when the foreground value
    // changes; it ends the previous run (if that was foreground) and starts one (if this is).
    void step(T v, T& pv, int64_t x, uint32_t* st, uint32_t* en, int64_t& ns, int64_t& ne) const {
        const bool f = is_fg(v), pf = is_fg(pv);
        const bool brk = invert ? (f != pf) : (v != pv);
        en[ne] = static_cast<uint32_t>(x);
        ne += pf & brk;
        st[ns] = static_cast<uint32_t>(x);
        ns += f & brk;
        pv = v;
    }

    // Appends the runs of row (z, y) (and their values); returns how many. st / en: W + 1 scratch.
    int64_t scan(int64_t z, int64_t y, std::vector<Run>& out, std::vector<Stored<T>>& vals, uint32_t* st, uint32_t* en) const {
        const T* p = row_ptr(z, y);
        int64_t ns = 0, ne = 0, x = 0;
        T pv = invert ? static_cast<T>(static_cast<int64_t>(bg) ^ 1) : bg;   // "before the row": not foreground
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if constexpr (sizeof(T) == 1) {
            if (s2 == 1) {
                // Bytes, 8 at a time: XOR with the word shifted by one voxel marks the voxels that
                // differ from their left neighbour; only those can start or end a run.
                const uint8_t* b = reinterpret_cast<const uint8_t*>(p);
                uint8_t bgb, pb;
                std::memcpy(&bgb, &bg, 1);
                std::memcpy(&pb, &pv, 1);
                const bool inv = invert;
                for (; x + 8 <= W; x += 8) {
                    uint64_t w;
                    std::memcpy(&w, b + x, 8);
                    uint64_t diff = w ^ ((w << 8) | pb);
                    const uint8_t left0 = pb;
                    pb = static_cast<uint8_t>(w >> 56);
                    while (diff) {
                        const int k = __builtin_ctzll(diff) >> 3;
                        diff &= ~(uint64_t(0xff) << (8 * k));
                        const uint8_t cur = static_cast<uint8_t>(w >> (8 * k));
                        const uint8_t left = k ? static_cast<uint8_t>(w >> (8 * k - 8)) : left0;
                        const bool pf = inv ? (left == bgb) : (left != bgb);
                        const bool f = inv ? (cur == bgb) : (cur != bgb);
                        if (inv && pf == f) continue;
                        if (pf) en[ne++] = static_cast<uint32_t>(x + k);
                        if (f) st[ns++] = static_cast<uint32_t>(x + k);
                    }
                }
                std::memcpy(&pv, &pb, 1);
            }
        }
#endif
        for (; x < W; ++x) step(p[x * s2], pv, x, st, en, ns, ne);
        en[ne] = static_cast<uint32_t>(W);
        ne += is_fg(pv);
        for (int64_t i = 0; i < ns; ++i) {
            out.push_back(Run{st[i], en[i]});
            vals.push_back(static_cast<Stored<T>>(p[int64_t(st[i]) * s2]));
        }
        return ns;
    }

    T value(int64_t z, int64_t y, uint32_t x) const { return row_ptr(z, y)[x * s2]; }
};

template <typename T>
struct Merger {
    const Scanner<T>& sc;
    const int64_t* row_start;
    const Run* runs;
    uint32_t* parent;
    const Stored<T>* vals;   // per run; nullptr: read the values from the input
    int64_t D, H;
    const cc::RowNeighbour* rows;
    int nrows;
    bool same_value_needed;
    int64_t row0;            // row_start is indexed from this row (runs/parent/vals: its indices)

    // Unites the runs of row r with touching runs of earlier rows nr in [lo, hi). All neighbour
    // rows are swept together so each run's root is looked up once and kept current.
    void merge_row(int64_t r, int64_t lo, int64_t hi) const {
        const int64_t z = r / H, y = r % H;
        const int64_t a0 = row_start[r - row0], a1 = row_start[r - row0 + 1];
        if (a0 == a1) return;
        int64_t j[4], b1[4], bz[4], by[4];
        int tol[4];
        int n = 0;
        for (int k = 0; k < nrows; ++k) {
            const int64_t nz = z + rows[k].dz, ny = y + rows[k].dy;
            if (nz < 0 || ny < 0 || ny >= H) continue;
            const int64_t nr = nz * H + ny;
            if (nr < lo || nr >= hi || row_start[nr - row0] == row_start[nr - row0 + 1]) continue;
            j[n] = row_start[nr - row0];
            b1[n] = row_start[nr - row0 + 1];
            bz[n] = nz;
            by[n] = ny;
            tol[n] = rows[k].tolerance;
            ++n;
        }
        if (n == 0) return;
        for (int64_t i = a0; i < a1; ++i) {
            const Run a = runs[i];
            uint32_t ri = cc::find_root<uint32_t>(parent, static_cast<uint32_t>(i));
            for (int k = 0; k < n; ++k) {
                const int64_t e = b1[k];
                const int64_t t = tol[k];
                int64_t m = j[k];
                while (m < e && int64_t(runs[m].end) + t <= int64_t(a.begin)) ++m;
                j[k] = m;
                for (; m < e && int64_t(runs[m].begin) < int64_t(a.end) + t; ++m) {
                    if (same_value_needed) {
                        if (vals != nullptr ? vals[i] != vals[m]
                                            : sc.value(z, y, a.begin) != sc.value(bz[k], by[k], runs[m].begin))
                            continue;
                    }
                    uint32_t rm = parent[m];
                    if (rm == ri) continue;   // already joined (the common case)
                    rm = cc::find_root<uint32_t>(parent, rm);
                    if (rm < ri) {
                        parent[ri] = rm;
                        ri = rm;
                    } else if (ri < rm) {
                        parent[rm] = ri;
                    }
                }
            }
            parent[i] = ri;
        }
    }
};

template <typename T>
void label_runs_typed(RunLabeling& rl, int connectivity, int64_t max_label) {
    const Layout& L = rl.layout;
    const int64_t D = L.shape[0], H = L.shape[1], W = L.shape[2];
    const int64_t R = D * H;
    const Scanner<T> sc{rl.input.data<T>(), rl.input.strides.s[0], rl.input.strides.s[1], rl.input.strides.s[2], W,
                  static_cast<T>(rl.background), rl.invert};

    // Slabs of rows, at least about 2^20 voxels each (smaller inputs run on the caller's thread).
    const int64_t grain = std::max<int64_t>(1, g_min_slab_voxels / std::max<int64_t>(W, 1));
    const int threads = planned_threads(R, grain);
    std::vector<int64_t> slab(threads + 1);
    {
        const int64_t base = R / threads, extra = R % threads;
        for (int t = 0; t <= threads; ++t) slab[t] = t * base + std::min<int64_t>(t, extra);
    }
    cc::RowNeighbour rows[4];
    const int nrows = cc::backward_rows(connectivity, rows);
    const bool need_value = !(std::is_same<T, bool>::value || rl.invert);

    // Phase A, one slab per thread: cut each row into runs and merge it at once with the earlier
    // rows of the slab (still in cache), in slab-local indices.
    struct Slab {
        std::vector<Run> runs;
        std::vector<uint32_t> parent;
        std::vector<int64_t> row_start;   // rows - slab start + 1 entries, local run indices
    };
    std::vector<Slab> local(threads);
    std::vector<std::exception_ptr> errors(threads);
    parallel_for(threads, 1, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) {
            // Thread-private vectors, moved into the shared table at the end (their headers
            // change on every push_back and must not share a cache line with another thread's).
            std::vector<Run> runs;
            std::vector<uint32_t> par;
            std::vector<int64_t> row_start;
            std::vector<Stored<T>> vals;
            try {
                std::vector<uint32_t> scratch(2 * (W + 1));
                const int64_t rows_t = slab[t + 1] - slab[t];
                row_start.assign(rows_t + 1, 0);
                runs.reserve(static_cast<size_t>(std::min<int64_t>(rows_t * 4, 1 << 20)));
                Merger<T> mg{sc, row_start.data(), nullptr, nullptr, nullptr, D, H, rows, nrows, need_value, slab[t]};
                // Until a second foreground value shows up in the slab (binary masks stored as
                // integers: never), touching runs need no value comparison.
                size_t checked = 0;
                bool mixed = false;
                mg.same_value_needed = false;
                for (int64_t r = slab[t]; r < slab[t + 1]; ++r) {
                    sc.scan(r / H, r % H, runs, vals, scratch.data(), scratch.data() + W + 1);
                    const size_t n = runs.size();
                    if (need_value && !mixed) {
                        for (; checked < n && !mixed; ++checked) mixed = vals[checked] != vals[0];
                        mg.same_value_needed = mixed;
                    }
                    row_start[r - slab[t] + 1] = static_cast<int64_t>(n);
                    if (n >= static_cast<size_t>(std::numeric_limits<uint32_t>::max())) {
                        errors[t] = std::make_exception_ptr(std::overflow_error(
                            "connected components: more than 2^32 - 1 runs; the volume is too large to label"));
                        break;
                    }
                    for (size_t i = par.size(); i < n; ++i) par.push_back(static_cast<uint32_t>(i));
                    mg.runs = runs.data();
                    mg.parent = par.data();
                    mg.vals = vals.data();
                    mg.merge_row(r, slab[t], r);
                }
            } catch (...) {
                errors[t] = std::current_exception();   // rethrown on the caller's thread
            }
            Slab& sl = local[t];
            sl.runs = std::move(runs);
            sl.parent = std::move(par);
            sl.row_start = std::move(row_start);
        }
    });
    for (const auto& e : errors)
        if (e) std::rethrow_exception(e);
    int64_t total = 0;
    std::vector<int64_t> slab_base(threads);
    for (int t = 0; t < threads; ++t) {
        slab_base[t] = total;
        total += static_cast<int64_t>(local[t].runs.size());
    }
    if (total >= static_cast<int64_t>(std::numeric_limits<uint32_t>::max()))
        throw std::overflow_error("connected components: more than 2^32 - 1 runs; the volume is too large to label");
    // Phase B: gather the slabs into global arrays (indices shifted by each slab's base).
    rl.runs.resize(static_cast<size_t>(total));
    rl.label.resize(static_cast<size_t>(total));
    rl.row_start.assign(R + 1, total);
    uint32_t* parent = rl.label.data();
    parallel_for(threads, 1, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) {
            Slab& sl = local[t];
            const int64_t base = slab_base[t];
            if (!sl.runs.empty()) std::memcpy(rl.runs.data() + base, sl.runs.data(), sl.runs.size() * sizeof(Run));
            for (size_t i = 0; i < sl.parent.size(); ++i) parent[base + i] = static_cast<uint32_t>(base + sl.parent[i]);
            for (int64_t r = slab[t]; r < slab[t + 1]; ++r) rl.row_start[r] = base + sl.row_start[r - slab[t]];
            std::vector<Run>().swap(sl.runs);
            std::vector<uint32_t>().swap(sl.parent);
        }
    });
    // Slab faces: rows of slab t whose earlier neighbours lie in earlier slabs (at most H + 1 rows).
    Merger<T> mg{sc, rl.row_start.data(), rl.runs.data(), parent, nullptr, D, H, rows, nrows, need_value, 0};
    for (int t = 1; t < threads; ++t)
        for (int64_t r = slab[t]; r < std::min(slab[t + 1], slab[t] + H + 2); ++r) mg.merge_row(r, 0, slab[t]);
    const int64_t n = cc::number_in_raster_order<uint32_t>(parent, total, max_label);
    if (n > max_label)
        throw std::overflow_error("connected components: more than " + std::to_string(max_label) +
                                  " components do not fit the int32 label type");
    rl.count = n;
    rl.root_run.assign(static_cast<size_t>(n), 0);
    uint32_t next = 1;
    for (int64_t i = 0; i < total; ++i)
        if (parent[i] == next) rl.root_run[next++ - 1] = static_cast<uint32_t>(i);
}

}  // namespace

void set_min_slab_voxels(int64_t voxels) { g_min_slab_voxels = voxels > 0 ? voxels : (int64_t(1) << 20); }

std::unique_ptr<RunLabeling> label_runs(const Layout& layout, const ArrayArg& input, int connectivity,
                                        int64_t background, bool invert, int64_t max_label) {
    if (layout.ndim != 3) throw std::invalid_argument("label_runs expects a 3-D layout");
    if (connectivity != 6 && connectivity != 18 && connectivity != 26)
        throw std::invalid_argument("connectivity must be 6, 18 or 26");
    if (layout.shape[2] >= static_cast<int64_t>(std::numeric_limits<uint32_t>::max()))
        throw std::invalid_argument("rows longer than 2^32 - 1 voxels are not supported");
    auto rl = std::make_unique<RunLabeling>();
    rl->layout = layout;
    rl->input = input;
    rl->background = background;
    rl->invert = invert;
    dispatch_all(input.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_same<T, half_t>::value || std::is_same<T, bfloat16_t>::value ||
                      std::is_floating_point<T>::value) {
            throw std::invalid_argument("connected components need bool or integer input");
        } else {
            label_runs_typed<T>(*rl, connectivity, max_label);
        }
    });
    return rl;
}

}  // namespace medseg::cpu
