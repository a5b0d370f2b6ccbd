// Run-based parallel connected-component labeling (CPU).
//
// 1. Runs: rows are split into slabs (two per thread, taken from a shared counter); each row
//    becomes two bit planes, S (first voxel of a run) and E (last voxel), from "foreground" and
//    "same value as the left neighbour" bits (byte inputs: 16 voxels per SSE2 compare, 64 per
//    word). Runs are read off the planes with count-trailing-zeros, so the cost follows the
//    number of runs, not of branches per voxel.
// 2. Union: runs are union-find elements in raster order. Each thread merges the runs of a row
//    with the touching runs of the earlier rows of its slab at once (no sharing, no atomics).
//    The touching runs of a neighbour row form an index range found in O(1) by counting bits of
//    its planes before the run's ends (rank with POPCNT), so short runs (noise) cost no searches
//    and no data-dependent loops for the first two candidates of each row.
//    Then the rows at the slab faces are merged with the previous slab on one thread.
// 3. Numbering: parent[i] <= i, so one ascending sweep numbers roots 1..N in raster order of
//    their first voxel (scipy.ndimage.label's order), for any slab split.
// The row/tolerance table comes from medseg/components.h, shared with the CUDA labeler.
// Run-based labeling follows He, Chao & Suzuki, "A run-based two-scan labeling algorithm",
// IEEE TIP 2008; the rank lookup of overlapping runs is in the spirit of the relative-label
// tables of Lacassagne & Zavidovique's Light Speed Labeling (J. Real-Time Image Proc. 2011);
// the slab split and face merge follow the usual parallel union-find scheme.
//
// Why one file (~520 lines): the run extraction, the slab union-find and the face merge share the
// run layout and the root rule that the numbering proof rests on; they are read together.
#include <algorithm>
#include <atomic>
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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

    bool is_fg(T v) const { return invert ? (v == bg) : (v != bg); }

    // Bit planes of row (z, y), bit x of word x / 64: F = foreground, Q = same value as the
    // voxel to the left (bit 0 clear). F and Q have nw + 1 words (the last stays zero).
    // Returns false when the row has no foreground.
    bool bits(int64_t z, int64_t y, uint64_t* F, uint64_t* Q, int64_t nw) const {
        const T* p = row_ptr(z, y);
        int64_t x = 0;
#if defined(__SSE2__)
        if constexpr (sizeof(T) == 1) {
            if (s2 == 1) {
                // 64 bytes per word: compares with the background, and (only where a word has
                // foreground) with the byte to the left. Q is not needed where F is clear.
                uint8_t bgb;
                std::memcpy(&bgb, &bg, 1);
                const __m128i bgv = _mm_set1_epi8(static_cast<char>(bgb));
                const uint32_t flip = invert ? 0u : 0xffffu;
                const uint8_t* b = reinterpret_cast<const uint8_t*>(p);
                __m128i prev = _mm_setzero_si128();
                uint64_t any = 0;
                // The last partial word goes through the same code from a copy padded with a
                // byte that is not foreground (and differs from any foreground byte).
                alignas(16) uint8_t pad[64];
                for (; x < W; x += 64) {
                    const uint8_t* src = b + x;
                    if (x + 64 > W) {
                        std::memset(pad, invert ? static_cast<uint8_t>(bgb ^ 1) : bgb, sizeof pad);
                        std::memcpy(pad, b + x, static_cast<size_t>(W - x));
                        src = pad;
                    }
                    __m128i v[4];
                    uint64_t f = 0;
                    for (int k = 0; k < 4; ++k) {
                        v[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * k));
                        f |= uint64_t(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v[k], bgv))) ^ flip) << (16 * k);
                    }
                    uint64_t q = 0;
                    if (f != 0) {
                        for (int k = 0; k < 4; ++k) {
                            const __m128i last = k ? v[k - 1] : prev;
                            const __m128i left = _mm_or_si128(_mm_slli_si128(v[k], 1), _mm_srli_si128(last, 15));
                            q |= uint64_t(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v[k], left)))) << (16 * k);
                        }
                    }
                    F[x >> 6] = f;
                    Q[x >> 6] = q;
                    any |= f;
                    prev = v[3];
                }
                F[nw] = Q[nw] = 0;
                Q[0] &= ~uint64_t(1);
                return any != 0;
            }
        }
#endif
        if (x < W) {
            F[x >> 6] = 0;
            Q[x >> 6] = 0;
        }
        F[nw] = Q[nw] = 0;
        T pv = x > 0 ? p[(x - 1) * s2] : T{};
        for (; x < W; ++x) {
            const T v = p[x * s2];
            if ((x & 63) == 0) F[x >> 6] = Q[x >> 6] = 0;
            F[x >> 6] |= uint64_t(is_fg(v)) << (x & 63);
            Q[x >> 6] |= uint64_t(x > 0 && v == pv) << (x & 63);
            pv = v;
        }
        Q[0] &= ~uint64_t(1);
        uint64_t any = 0;
        for (int64_t w = 0; w < nw; ++w) any |= F[w];
        return any != 0;
    }

    T value(int64_t z, int64_t y, uint32_t x) const { return row_ptr(z, y)[x * s2]; }
};

// Runs of one row as bit planes: S = first voxel of a run, E = last voxel of a run, with
// prefix popcounts, so "how many runs of the row start (end) before x" costs O(1).
// One word of both planes with its prefix counts, together in one cache line.
struct PlaneWord {
    uint64_t S, E;
    uint32_t ps, pe;   // runs starting (ending) before bit 0 of this word
};
using RowPlanes = PlaneWord*;

// The labeler counts bits with POPCNT on x86-64: numpy, which every caller has imported,
// already requires x86-64-v2 (POPCNT, SSE4.2). Elsewhere the builtin is native or a fallback.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("popcnt")
#define MSF_CC_POPCNT 1
#endif

inline uint32_t popcount64(uint64_t v) {
#if defined(MSF_CC_POPCNT) || defined(__POPCNT__) || !(defined(__x86_64__) || defined(__i386__))
    return static_cast<uint32_t>(__builtin_popcountll(v));
#else
    v = v - ((v >> 1) & 0x5555555555555555ull);
    v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
    v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return static_cast<uint32_t>((v * 0x0101010101010101ull) >> 56);
#endif
}

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

// One slab of rows labeled on one thread, in slab-local run indices.
template <typename T>
struct SlabLabeler {
    const Scanner<T>& sc;
    int64_t D, H, W, nw;
    const cc::RowNeighbour* rows;
    int nrows;
    bool need_value;

    struct Out {
        PodArray<Run> runs;
        PodArray<uint32_t> parent;
        std::vector<int64_t> row_start;   // rows + 1 entries, local run indices
    };

    // Cuts rows [r0, r1) into runs and unites each run with the touching runs of the earlier
    // rows of the slab (the previous plane's rows are kept as bit planes in a ring).
    void run(int64_t r0, int64_t r1, Out& out) const {
        const int64_t rows_t = r1 - r0;
        // Earlier neighbours are at most H + 1 rows back (1 row in a single plane).
        const int64_t ring = std::min<int64_t>(rows_t, D > 1 ? H + 2 : 2);
        const int64_t stride = nw + 1;
        std::vector<PlaneWord> planes(static_cast<size_t>(ring * stride));
        std::vector<uint64_t> fq(static_cast<size_t>(2 * stride));
        int64_t ring_pos = 0;   // ring slot of the current row (slots advance without divisions)
        auto row_planes = [&](int64_t r_back) {   // the row r_back rows before the current one
            int64_t k = ring_pos - r_back;
            k += k < 0 ? ring : 0;
            return planes.data() + k * stride;
        };
        PodArray<Run>& runs = out.runs;
        PodArray<uint32_t>& parent = out.parent;
        PodArray<Stored<T>> vals;
        std::vector<int64_t>& row_start = out.row_start;
        row_start.assign(static_cast<size_t>(rows_t + 1), 0);
        // Until a second foreground value shows up in the slab (binary masks stored as integers:
        // never), touching runs need no value comparison.
        bool mixed = false;
        bool have_first = false;
        Stored<T> first_value{};
        uint64_t* F = fq.data();
        uint64_t* Q = fq.data() + stride;
        int64_t z = r0 / H, y = r0 % H;
        for (int64_t r = r0; r < r1; ++r, ++y, ring_pos = ring_pos + 1 == ring ? 0 : ring_pos + 1) {
            if (y == H) y = 0, ++z;
            if (!sc.bits(z, y, F, Q, nw)) {   // an empty row: no runs, and no neighbour reads its planes
                row_start[r - r0 + 1] = static_cast<int64_t>(runs.size());
                continue;
            }
            const RowPlanes rp = row_planes(0);
            uint32_t cs = 0, ce = 0;
            for (int64_t w = 0; w <= nw; ++w) {
                const uint64_t s = F[w] & ~Q[w];
                const uint64_t e = F[w] & ~((Q[w] >> 1) | (w < nw ? Q[w + 1] << 63 : 0));
                rp[w] = PlaneWord{s, e, cs, ce};
                cs += popcount64(s);
                ce += popcount64(e);
            }
            const size_t n0 = runs.size(), count = cs;
            if (n0 + count >= static_cast<size_t>(std::numeric_limits<uint32_t>::max()))
                throw std::overflow_error(
                    "connected components: more than 2^32 - 1 runs; the volume is too large to label");
            runs.resize_uninit(n0 + count);
            parent.resize_uninit(n0 + count);
            Run* rr = runs.data() + n0;
            size_t k = 0;
            for (int64_t w = 0; w < nw; ++w)
                for (uint64_t m = rp[w].S; m; m &= m - 1)
                    rr[k++].begin = static_cast<uint32_t>(64 * w + __builtin_ctzll(m));
            k = 0;
            for (int64_t w = 0; w < nw; ++w)
                for (uint64_t m = rp[w].E; m; m &= m - 1)
                    rr[k++].end = static_cast<uint32_t>(64 * w + __builtin_ctzll(m) + 1);
            uint32_t* par = parent.data();
            for (size_t i = n0; i < n0 + count; ++i) par[i] = static_cast<uint32_t>(i);
            if (need_value) {
                vals.resize_uninit(n0 + count);
                const T* p = sc.row_ptr(z, y);
                Stored<T>* v = vals.data();
                for (size_t i = 0; i < count; ++i) v[n0 + i] = static_cast<Stored<T>>(p[int64_t(rr[i].begin) * sc.s2]);
                if (!mixed && count > 0) {
                    if (!have_first) first_value = v[n0], have_first = true;
                    for (size_t i = 0; i < count && !mixed; ++i) mixed = v[n0 + i] != first_value;
                }
            }
            row_start[r - r0 + 1] = static_cast<int64_t>(n0 + count);
            if (count > 0)
                merge_row(r, z, y, r0, row_start.data(), runs.data(), par, mixed ? vals.data() : nullptr, row_planes);
        }
    }

    template <typename PlanesOf>
    void merge_row(int64_t r, int64_t z, int64_t y, int64_t r0, const int64_t* row_start, const Run* runs,
                   uint32_t* parent, const Stored<T>* vals, const PlanesOf& planes_of) const {
        RowPlanes nb[4];
        int64_t base[4], tol[4];
        int n = 0;
        for (int k = 0; k < nrows; ++k) {
            const int64_t nz = z + rows[k].dz, ny = y + rows[k].dy;
            if (nz < 0 || ny < 0 || ny >= H) continue;
            const int64_t nr = nz * H + ny;
            if (nr < r0 || row_start[nr - r0] == row_start[nr - r0 + 1]) continue;
            nb[n] = planes_of(r - nr);
            base[n] = row_start[nr - r0];
            tol[n] = rows[k].tolerance;
            ++n;
        }
        if (n == 0) return;
        if (vals != nullptr) {
            merge_runs<true>(row_start[r - r0], row_start[r - r0 + 1], runs, parent, vals, nb, base, tol, n);
        } else {
            merge_runs<false>(row_start[r - r0], row_start[r - r0 + 1], runs, parent, vals, nb, base, tol, n);
        }
    }

    // Unites runs [a0, a1) of a row with the touching runs of its n neighbour rows.
    template <bool Mixed>
    void merge_runs(int64_t a0, int64_t a1, const Run* runs, uint32_t* parent, const Stored<T>* vals,
                    const RowPlanes* nb, const int64_t* base, const int64_t* tol, int n) const {
        // Unites ri's set with candidate c's (c = ri itself is a no-op).
        auto join = [&](uint32_t& ri, uint32_t c) {
            uint32_t rc = parent[c];
            if (rc == ri) return;   // the common case once a run has met its component
            rc = cc::find_root<uint32_t>(parent, rc);
            if (rc < ri) {
                parent[ri] = rc;
                ri = rc;
            } else if (ri < rc) {
                parent[rc] = ri;
            }
        };
        for (int64_t i = a0; i < a1; ++i) {
            const int64_t b = runs[i].begin, e = runs[i].end;
            // Rank positions for tolerance 0 and 1, shared by the rows.
            int64_t wl[2], wh[2];
            uint64_t ml[2], mh[2];
            for (int t = 0; t < 2; ++t) {
                const int64_t lo = std::max<int64_t>(b - t, 0), hi = std::min<int64_t>(e + t, W);
                wl[t] = lo >> 6, wh[t] = hi >> 6;
                ml[t] = (uint64_t(1) << (lo & 63)) - 1, mh[t] = (uint64_t(1) << (hi & 63)) - 1;
            }
            uint32_t ri = static_cast<uint32_t>(i);
            for (int k = 0; k < n; ++k) {
                // Runs m of the neighbour row touch [b, e) iff last_m >= b - tol and first_m < e + tol:
                // m0 = runs ending before b - tol, m1 = runs starting before e + tol (rank queries).
                const int64_t t = tol[k];
                const PlaneWord& lw = nb[k][wl[t]];
                const PlaneWord& hw = nb[k][wh[t]];
                const int64_t m0 = base[k] + lw.pe + popcount64(lw.E & ml[t]);
                const int64_t m1 = base[k] + hw.ps + popcount64(hw.S & mh[t]);
                // The first two candidates without branches (a missing one becomes ri), the rest in a loop.
                for (int64_t u = 0; u < 2; ++u) {
                    const int64_t m = m0 + u;
                    const bool ok = m < m1 && (!Mixed || vals[m < m1 ? m : i] == vals[i]);
                    join(ri, ok ? static_cast<uint32_t>(m) : ri);
                }
                for (int64_t m = m0 + 2; m < m1; ++m)
                    if (!Mixed || vals[m] == vals[i]) join(ri, static_cast<uint32_t>(m));
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
    // Two slabs per thread (more slab faces cost more than the balance gains), taken from a
    // shared counter, so a thread that is descheduled on a busy machine does not hold the others
    // up; the result does not depend on the split.
    const int64_t grain = std::max<int64_t>(1, g_min_slab_voxels / std::max<int64_t>(W, 1));
    const int threads = planned_threads(R, grain);
    const int64_t nslabs = threads == 1 ? 1 : std::min<int64_t>((R + grain - 1) / grain, 2 * int64_t(threads));
    std::vector<int64_t> slab(static_cast<size_t>(nslabs + 1));
    {
        const int64_t base = R / nslabs, extra = R % nslabs;
        for (int64_t t = 0; t <= nslabs; ++t) slab[t] = t * base + std::min<int64_t>(t, extra);
    }
    cc::RowNeighbour rows[4];
    const int nrows = cc::backward_rows(connectivity, rows);
    const bool need_value = !(std::is_same<T, bool>::value || rl.invert);
    const int64_t nw = (W + 63) / 64;

    // Phase A, slabs in parallel: cut each row into runs and merge it at once with the earlier
    // rows of the slab (still in cache), in slab-local indices.
    using Labeler = SlabLabeler<T>;
    const Labeler lab{sc, D, H, W, nw, rows, nrows, need_value};
    std::vector<typename Labeler::Out> local(static_cast<size_t>(nslabs));
    std::vector<std::exception_ptr> errors(static_cast<size_t>(nslabs));
    std::atomic<int64_t> next{0};
    parallel_for(threads, 1, [&](int64_t, int64_t, int) {
        for (int64_t t = next.fetch_add(1); t < nslabs; t = next.fetch_add(1)) {
            typename Labeler::Out out;   // thread-private until done, then moved into the table
            try {
                lab.run(slab[t], slab[t + 1], out);
            } catch (...) {
                errors[t] = std::current_exception();   // rethrown on the caller's thread
            }
            local[t] = std::move(out);
        }
    });
    for (const auto& e : errors)
        if (e) std::rethrow_exception(e);
    int64_t total = 0;
    std::vector<int64_t> slab_base(static_cast<size_t>(nslabs));
    for (int64_t t = 0; t < nslabs; ++t) {
        slab_base[t] = total;
        total += static_cast<int64_t>(local[t].runs.size());
    }
    if (total >= static_cast<int64_t>(std::numeric_limits<uint32_t>::max()))
        throw std::overflow_error("connected components: more than 2^32 - 1 runs; the volume is too large to label");
    // Phase B: slab 0's arrays become the global ones (realloc remaps, no copy); the other slabs
    // are appended with their indices shifted by the slab's base.
    rl.runs = std::move(local[0].runs);
    rl.label = std::move(local[0].parent);
    rl.runs.resize_uninit(static_cast<size_t>(total));
    rl.label.resize_uninit(static_cast<size_t>(total));
    rl.row_start.resize(static_cast<size_t>(R + 1));
    uint32_t* parent = rl.label.data();
    std::atomic<int64_t> next_b{0};
    parallel_for(threads, 1, [&](int64_t, int64_t, int) {
        for (int64_t t = next_b.fetch_add(1); t < nslabs; t = next_b.fetch_add(1)) {
            auto& sl = local[t];
            const int64_t base = slab_base[t];
            if (t > 0) {
                if (!sl.runs.empty()) std::memcpy(rl.runs.data() + base, sl.runs.data(), sl.runs.size() * sizeof(Run));
                const uint32_t* lp = sl.parent.data();
                for (size_t i = 0; i < sl.parent.size(); ++i) parent[base + i] = static_cast<uint32_t>(base + lp[i]);
                sl.runs.release();
                sl.parent.release();
            }
            for (int64_t r = slab[t]; r < slab[t + 1]; ++r) rl.row_start[r] = base + sl.row_start[r - slab[t]];
        }
    });
    rl.row_start[R] = total;
    // Slab faces: rows of slab t whose earlier neighbours lie in earlier slabs (at most H + 1 rows).
    Merger<T> mg{sc, rl.row_start.data(), rl.runs.data(), parent, nullptr, D, H, rows, nrows, need_value, 0};
    for (int64_t t = 1; t < nslabs; ++t)
        for (int64_t r = slab[t]; r < std::min(slab[t + 1], slab[t] + H + 2); ++r) mg.merge_row(r, 0, slab[t]);
    // Numbering in one ascending sweep (parent[i] <= i, as in cc::number_in_raster_order), which
    // also records each component's root run.
    int64_t n = 0;
    rl.root_run.clear();
    for (int64_t i = 0; i < total; ++i) {
        const uint32_t p = parent[i];
        if (p == static_cast<uint32_t>(i)) {
            if (++n > max_label)
                throw std::overflow_error("connected components: more than " + std::to_string(max_label) +
                                          " components do not fit the int32 label type");
            parent[i] = static_cast<uint32_t>(n);
            rl.root_run.push_back(static_cast<uint32_t>(i));
        } else {
            parent[i] = parent[p];
        }
    }
    rl.count = n;
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
