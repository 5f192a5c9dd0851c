// Turns a run-time remainder count into a template argument, so each size of
// a register-blocked kernel's last block is its own fully unrolled
// instantiation (shared by the kernels written once over vector traits).
#pragma once
#include <cstdint>
#include <type_traits>

namespace pyengine {

// Calls f(std::integral_constant<int, n>{}) for n in [1, Max]; nothing for
// any other n.
template <int Max, class F>
inline void with_static_count(int64_t n, F&& f) {
  if constexpr (Max > 0) {
    if (n == Max) return f(std::integral_constant<int, Max>{});
    with_static_count<Max - 1>(n, f);
  }
}

}  // namespace pyengine
