// Conversion of the loss-kernel arguments from plain Python values (pybind11 only).
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "medseg/dispatch.h"
#include "medseg/losses.h"

namespace medseg::bindings {

// (B, K, n0, n1, n2)
inline SegShape make_seg_shape(const std::vector<int64_t>& dims) {
    if (dims.size() != 5) throw std::invalid_argument("loss shape must be (B, K, n0, n1, n2)");
    SegShape s;
    s.batch = dims[0];
    s.classes = dims[1];
    for (int i = 0; i < 3; ++i) s.n[i] = dims[2 + i];
    return s;
}

// (ptr, dtype, [sb, sk, s0, s1, s2])
using SegDesc = std::tuple<uintptr_t, std::string, std::vector<int64_t>>;

inline SegArray make_seg_array(const SegDesc& desc) {
    SegArray a;
    a.ptr = std::get<0>(desc);
    a.dtype = parse_dtype(std::get<1>(desc));
    const auto& st = std::get<2>(desc);
    if (st.size() != 5) throw std::invalid_argument("loss array strides must be (sb, sk, s0, s1, s2)");
    a.sb = st[0];
    a.sk = st[1];
    for (int i = 0; i < 3; ++i) a.ss[i] = st[2 + i];
    return a;
}

// (act, term, term_first, gamma, squared_pred, onehot, has_ignore, ignore_index, explog_eps)
using SegConfigTuple = std::tuple<int, int, int, double, bool, bool, bool, int64_t, double>;

inline SegLossConfig make_seg_config(const SegConfigTuple& t, int64_t classes) {
    SegLossConfig c;
    c.classes = classes;
    const int act = std::get<0>(t), term = std::get<1>(t);
    if (act < 0 || act > 1) throw std::invalid_argument("unknown Dice activation");
    if (term < 0 || term > 3) throw std::invalid_argument("unknown pixel term");
    c.act = static_cast<DiceAct>(act);
    c.term = static_cast<PixelTerm>(term);
    c.term_first = std::get<2>(t);
    c.gamma = std::get<3>(t);
    c.squared_pred = std::get<4>(t);
    c.onehot = std::get<5>(t);
    c.has_ignore = std::get<6>(t);
    c.ignore_index = std::get<7>(t);
    c.explog_eps = std::get<8>(t);
    return c;
}

}  // namespace medseg::bindings
