// One pass over two label maps: per-class voxel counts, overlaps and union bounding boxes, and
// the confusion matrix. Integer counts, merged per thread, so any thread count gives the same.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "metrics_cpu.h"

namespace medseg::cpu {

using detail::ClassLookup;
using detail::label_value;


namespace {

bool all_zero_bytes(const void* data, int64_t nbytes) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    uint64_t acc = 0;
    int64_t i = 0;
    for (; i + 32 <= nbytes; i += 32) {
        uint64_t w[4];
        std::memcpy(w, p + i, 32);
        acc |= w[0] | w[1] | w[2] | w[3];
        if (acc) return false;
    }
    for (; i < nbytes; ++i) acc |= p[i];
    return acc == 0;
}

}  // namespace

std::vector<ClassBox> class_boxes(const Layout& layout, const ArrayArg& pred, const ArrayArg& gt,
                                  const ClassSpec& spec) {
    if (layout.ndim != 3) throw std::invalid_argument("class_boxes expects a 3-axis layout");
    const int k = spec.num_classes();
    const ClassLookup lookup(spec);
    const int64_t d0 = layout.shape[0], d1 = layout.shape[1], d2 = layout.shape[2];
    const int64_t rows = d0 * d1;
    const int threads = get_num_threads();
    std::vector<std::vector<ClassBox>> partial(threads, std::vector<ClassBox>(k));
    detail::dispatch_labels(pred.dtype, [&](auto pt) {
        using P = typename decltype(pt)::type;
        detail::dispatch_labels(gt.dtype, [&](auto gtag) {
            using G = typename decltype(gtag)::type;
            const P* pp = pred.data<P>();
            const G* gp = gt.data<G>();
            // Rows that are all zero in both maps are skipped by a word-wise scan when 0 is not a
            // requested class (small lesions in large volumes are mostly such rows).
            const bool skip_zero_rows = lookup(0) < 0 && pred.strides.s[2] == 1 && gt.strides.s[2] == 1 &&
                                        std::is_integral<P>::value && std::is_integral<G>::value;
            const bool binary_rows = spec.binary && pred.strides.s[2] == 1 && gt.strides.s[2] == 1 &&
                                     std::is_integral<P>::value && std::is_integral<G>::value;
            parallel_for(rows, 16, [&](int64_t begin, int64_t end, int t) {
                auto& acc = partial[t];
                for (int64_t r = begin; r < end; ++r) {
                    const int64_t i = r / d1, j = r % d1;
                    const P* prow = pp + i * pred.strides.s[0] + j * pred.strides.s[1];
                    const G* grow = gp + i * gt.strides.s[0] + j * gt.strides.s[1];
                    if (skip_zero_rows && all_zero_bytes(prow, d2 * sizeof(P)) && all_zero_bytes(grow, d2 * sizeof(G)))
                        continue;
                    if (binary_rows) {
                        // Binary masks with contiguous rows: vectorisable counts, then the union's
                        // first and last voxel of the row.
                        int64_t np = 0, ng = 0, nb = 0;
                        for (int64_t x = 0; x < d2; ++x) {
                            const int a = prow[x] != 0, b = grow[x] != 0;
                            np += a;
                            ng += b;
                            nb += a & b;
                        }
                        if (np + ng == 0) continue;
                        int64_t first = 0, last = d2 - 1;
                        while (prow[first] == 0 && grow[first] == 0) ++first;
                        while (prow[last] == 0 && grow[last] == 0) --last;
                        ClassBox& box = acc[0];
                        box.pred += np;
                        box.gt += ng;
                        box.both += nb;
                        box.lo[0] = std::min(box.lo[0], i);
                        box.hi[0] = std::max(box.hi[0], i);
                        box.lo[1] = std::min(box.lo[1], j);
                        box.hi[1] = std::max(box.hi[1], j);
                        box.lo[2] = std::min(box.lo[2], first);
                        box.hi[2] = std::max(box.hi[2], last);
                        continue;
                    }
                    for (int64_t x = 0; x < d2; ++x) {
                        const int a = lookup(label_value<P>(prow[x * pred.strides.s[2]]));
                        const int b = lookup(label_value<G>(grow[x * gt.strides.s[2]]));
                        if (a < 0 && b < 0) continue;
                        const int64_t idx[3] = {i, j, x};
                        auto touch = [&](ClassBox& box) {
                            for (int ax = 0; ax < 3; ++ax) {
                                box.lo[ax] = std::min(box.lo[ax], idx[ax]);
                                box.hi[ax] = std::max(box.hi[ax], idx[ax]);
                            }
                        };
                        if (a >= 0) {
                            acc[a].pred += 1;
                            touch(acc[a]);
                        }
                        if (b >= 0) {
                            acc[b].gt += 1;
                            if (b != a) touch(acc[b]);
                            else acc[b].both += 1;
                        }
                    }
                }
            });
        });
    });
    std::vector<ClassBox> out(k);
    for (int t = 0; t < threads; ++t)
        for (int c = 0; c < k; ++c) {
            const ClassBox& p = partial[t][c];
            out[c].pred += p.pred;
            out[c].gt += p.gt;
            out[c].both += p.both;
            for (int ax = 0; ax < 3; ++ax) {
                out[c].lo[ax] = std::min(out[c].lo[ax], p.lo[ax]);
                out[c].hi[ax] = std::max(out[c].hi[ax], p.hi[ax]);
            }
        }
    return out;
}

std::vector<int64_t> confusion_matrix(const Layout& layout, const ArrayArg& pred, const ArrayArg& gt, int64_t k) {
    if (layout.ndim != 3) throw std::invalid_argument("confusion_matrix expects a 3-axis layout");
    // k * k overflowed int64 for k = 2**33 (an empty table, then writes past it).
    if (k < 1 || k > (int64_t(1) << 20))
        throw std::invalid_argument("num_classes must be in 1..2**20, got " + std::to_string(k));
    const int64_t d0 = layout.shape[0], d1 = layout.shape[1], d2 = layout.shape[2];
    const int64_t rows = d0 * d1;
    // One table per thread while they stay small; large tables are filled by one thread (the
    // counts are integers, so the result is the same either way).
    const int64_t table_bytes = k * k * int64_t(sizeof(int64_t));
    const int threads = table_bytes * get_num_threads() <= (int64_t(256) << 20) ? get_num_threads() : 1;
    std::vector<std::vector<int64_t>> partial(threads, std::vector<int64_t>(k * k, 0));
    detail::dispatch_labels(pred.dtype, [&](auto pt) {
        using P = typename decltype(pt)::type;
        detail::dispatch_labels(gt.dtype, [&](auto gtag) {
            using G = typename decltype(gtag)::type;
            const P* pp = pred.data<P>();
            const G* gp = gt.data<G>();
            auto count_rows = [&](int64_t begin, int64_t end, int t) {
                int64_t* acc = partial[t].data();
                for (int64_t r = begin; r < end; ++r) {
                    const int64_t i = r / d1, j = r % d1;
                    const P* prow = pp + i * pred.strides.s[0] + j * pred.strides.s[1];
                    const G* grow = gp + i * gt.strides.s[0] + j * gt.strides.s[1];
                    for (int64_t x = 0; x < d2; ++x) {
                        const int64_t a = label_value<P>(prow[x * pred.strides.s[2]]);
                        const int64_t b = label_value<G>(grow[x * gt.strides.s[2]]);
                        if (a < 0 || a >= k || b < 0 || b >= k) continue;
                        acc[b * k + a] += 1;
                    }
                }
            };
            if (threads == 1)
                count_rows(0, rows, 0);
            else
                parallel_for(rows, 16, count_rows);
        });
    });
    std::vector<int64_t> out(k * k, 0);
    for (int t = 0; t < threads; ++t)
        for (int64_t i = 0; i < k * k; ++i) out[i] += partial[t][i];
    return out;
}

}  // namespace medseg::cpu
