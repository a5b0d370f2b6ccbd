// CPU parallel loop used by every CPU driver. Threads are started per call (no persistent
// pool), so a process that forks (DataLoader workers) never inherits a dead pool, and no
// OpenMP runtime is involved, so nothing conflicts with the libgomp that torch ships.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace medseg {

int get_num_threads();

namespace detail {

// The first exception thrown by any thread of a parallel loop, kept to rethrow on the caller.
class FirstError {
public:
    bool raised() const { return raised_.load(std::memory_order_acquire); }
    void capture() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        raised_.store(true, std::memory_order_release);
    }
    void rethrow() {
        if (error_) std::rethrow_exception(error_);
    }

private:
    std::mutex mutex_;
    std::exception_ptr error_;
    std::atomic<bool> raised_{false};
};

}  // namespace detail

void set_num_threads(int n);

// Calls fn(begin, end, thread_index) over a static, contiguous partition of [0, n).
// Work smaller than `grain` items per thread runs on the caller's thread only.
// The partition depends on the thread count, so callers that reduce must do so in a
// thread-count independent way (fixed blocks, exact integer sums).
//
// Never terminates the process: when the system refuses a thread (pid or address-space limits)
// the caller's thread runs that thread's range itself, with the same thread_index, so the result
// is the one the full thread count gives; an exception thrown by fn on any thread is rethrown on
// the caller's thread after every started worker has been joined.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    const int64_t max_useful = (n + grain - 1) / grain;
    const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), max_useful));
    if (threads <= 1) {
        fn(int64_t(0), n, 0);
        return;
    }
    const int64_t base = n / threads, extra = n % threads;
    auto bounds = [&](int t) {
        const int64_t begin = t * base + std::min<int64_t>(t, extra);
        return std::make_pair(begin, begin + base + (t < extra ? 1 : 0));
    };
    detail::FirstError error;
    auto run = [&](int t) {
        if (error.raised()) return;  // another range failed: the call's result is an error anyway
        try {
            const auto range = bounds(t);
            fn(range.first, range.second, t);
        } catch (...) {
            error.capture();
        }
    };
    std::vector<std::thread> workers;
    int started = 1;  // ranges 1..started-1 run on workers; the rest on this thread
    try {
        workers.reserve(threads - 1);
        for (; started < threads; ++started) workers.emplace_back(run, started);
    } catch (...) {
        // std::system_error (EAGAIN) or bad_alloc: carry on with the threads we have.
    }
    run(0);
    for (int t = started; t < threads; ++t) run(t);
    for (auto& worker : workers) worker.join();
    error.rethrow();
}

// Calls fn(begin, end, thread_index) on chunks [c * chunk, (c + 1) * chunk) of [0, n), pulled
// from a shared counter, for work whose cost varies along the range (a thread that finishes
// early, or one descheduled on a busy machine, does not hold the others up). Which thread runs
// an item, and how items are grouped into calls, varies: each item's result must depend only on
// the item.
template <typename Fn>
void parallel_for_dynamic(int64_t n, int64_t chunk, Fn&& fn) {
    if (n <= 0) return;
    chunk = std::max<int64_t>(chunk, 1);
    const int64_t chunks = (n + chunk - 1) / chunk;
    const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), chunks));
    if (threads <= 1) {
        fn(int64_t(0), n, 0);
        return;
    }
    std::atomic<int64_t> next{0};
    parallel_for(threads, 1, [&](int64_t t, int64_t, int) {
        for (int64_t b = next.fetch_add(chunk); b < n; b = next.fetch_add(chunk))
            fn(b, std::min(n, b + chunk), static_cast<int>(t));
    });
}

// Number of threads parallel_for would use for n items at this grain (for per-thread buffers).
inline int planned_threads(int64_t n, int64_t grain) {
    if (n <= 0) return 1;
    grain = std::max<int64_t>(grain, 1);
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), (n + grain - 1) / grain)));
}

}  // namespace medseg
