// Scratch<T>: the kernels' heap buffer. 64-byte aligned, grow-only (get(n) reuses the block when
// it is large enough, so a `static thread_local` one costs no allocation on the hot path), or
// filled (assign(n, v)); movable, not copyable; freed on destruction.
//
// Internal linkage (anonymous namespace) and no std containers: every ISA unit that includes
// this header keeps its own copy compiled with its own flags. An ISA unit's out-of-line copy of
// a std template (std::vector, std::fill, ...) is a weak symbol the linker may hand to other
// units, which would run AVX2 code on any CPU (tests/engine/test_isa_isolation.py).
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>

namespace onebit::kernels {
namespace {

template <typename T>
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch(Scratch&& o) noexcept : p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  ~Scratch() { std::free(p_); }

  // At least `need` elements, 64-byte aligned; the contents are unspecified. Throws
  // std::bad_alloc (the buffer is then empty).
  T* get(size_t need) {
    if (need > n_) {
      std::free(p_);
      n_ = 0;
      p_ = static_cast<T*>(std::aligned_alloc(64, (need * sizeof(T) + 63) / 64 * 64));
      if (!p_) throw std::bad_alloc();
      n_ = need;
    }
    return p_;
  }
  // `n` elements (at least one allocated), every one set to `v`.
  T* assign(size_t n, T v) {
    T* p = get(n ? n : 1);
    for (size_t i = 0; i < n; ++i) p[i] = v;
    return p;
  }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }
  T* data() { return p_; }
  const T* data() const { return p_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace
}  // namespace onebit::kernels
