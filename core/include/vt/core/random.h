#pragma once
// The default generator: a Philox (seed, offset) pair. An op that needs k Philox blocks reserves them
// atomically, so concurrent ops draw disjoint counter ranges and results depend only on the seed and the
// order of ops.
#include <cstdint>
#include <utility>

namespace vt::random {

void manual_seed(uint64_t seed);
uint64_t initial_seed();
// Returns (seed, first block) and advances the offset by `blocks`.
std::pair<uint64_t, uint64_t> reserve(uint64_t blocks);
std::pair<uint64_t, uint64_t> get_state();
void set_state(uint64_t seed, uint64_t offset);

}  // namespace vt::random
