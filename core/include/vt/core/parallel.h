#pragma once
// parallel_for: splits [begin, end) into contiguous chunks run on a small pool of worker threads (one per
// core by default, the caller included). Work under `grain` elements, or a call made from inside a worker, runs
// inline, so tiny ops pay nothing and nested parallelism cannot deadlock. Exceptions from chunks are rethrown in
// the caller.
#include <cstdint>

#include "vt/core/function_ref.h"

namespace vt {

inline constexpr int64_t kDefaultGrain = 32768;

void parallel_for(int64_t begin, int64_t end, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn);
int num_threads();
// The threads parallel regions are cut for from now on (one per core by default): the pool grows to n threads
// when it has fewer. n must lie in [1, max_num_threads()].
void set_num_threads(int n);
int max_num_threads();  // 8 per hardware thread, at least 256

}  // namespace vt
