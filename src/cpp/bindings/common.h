// Helpers shared by every bind_*.cpp: dtype names, shape strings, array checks (dtype,
// C-contiguity, ndim) and the ISA / thread-count arguments. Every check throws
// std::invalid_argument (ValueError in Python) with a message naming the argument.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "onebit/isa.h"
#include "onebit/threadpool.h"

namespace onebit::bind {

namespace nb = nanobind;

using In = nb::ndarray<nb::ro, nb::device::cpu>;
using Out = nb::ndarray<nb::device::cpu>;

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

template <class T> const char* dtype_name();
template <> inline const char* dtype_name<uint8_t>() { return "uint8"; }
template <> inline const char* dtype_name<int8_t>() { return "int8"; }
template <> inline const char* dtype_name<int32_t>() { return "int32"; }
template <> inline const char* dtype_name<uint64_t>() { return "uint64"; }
template <> inline const char* dtype_name<float>() { return "float32"; }

inline std::string dtype_name(nb::dlpack::dtype d) {
  const char* kind = d.code == uint8_t(nb::dlpack::dtype_code::Int)     ? "int"
                     : d.code == uint8_t(nb::dlpack::dtype_code::UInt)  ? "uint"
                     : d.code == uint8_t(nb::dlpack::dtype_code::Float) ? "float"
                     : d.code == uint8_t(nb::dlpack::dtype_code::Bool)  ? "bool"
                                                                         : "other";
  return std::string(kind) + std::to_string(d.bits);
}

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

template <class A>
std::vector<int64_t> shape_of(const A& a) {
  std::vector<int64_t> s(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i) s[i] = static_cast<int64_t>(a.shape(i));
  return s;
}

template <class A>
std::string shape_str(const A& a) { return shape_str(shape_of(a)); }

// dtype T (named `want` in the message) and C order (size-1 axes may carry any stride, as in NumPy;
// an empty array is trivially contiguous).
template <class T, class A>
void check_array(const char* name, const A& a, const char* want = dtype_name<T>()) {
  if (a.dtype() != nb::dtype<T>())
    fail(std::string(name) + " must have dtype " + want + ", got " + dtype_name(a.dtype()));
  int64_t expected = 1, total = 1;
  for (size_t i = 0; i < a.ndim(); ++i) total *= static_cast<int64_t>(a.shape(i));
  for (size_t i = a.ndim(); total > 0 && i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expected)
      fail(std::string(name) + " must be C-contiguous (use numpy.ascontiguousarray)");
    expected *= static_cast<int64_t>(a.shape(i));
  }
}

// check_array plus the number of dimensions; returns the shape.
template <class T, class A>
std::vector<int64_t> check(const A& a, const char* name, size_t ndim) {
  check_array<T>(name, a);
  if (a.ndim() != ndim)
    fail(std::string(name) + " must have " + std::to_string(ndim) + " dimensions, got " + std::to_string(a.ndim()));
  return shape_of(a);
}

// The ISA argument of every binding: None = the engine's active ISA; a name the CPU or build
// lacks is a ValueError listing the ones it has.
inline Isa pick_isa(const std::optional<std::string>& name) {
  if (!name) return active_isa();
  const Isa isa = isa_from_name(*name);  // invalid_argument for unknown names
  if (!isa_supported(isa)) {
    std::string have;
    for (auto i : supported_isas()) have += std::string(have.empty() ? "" : ", ") + isa_name(i);
    fail("isa '" + *name + "' is not supported by this CPU/build (supported: " + have + ")");
  }
  return isa;
}

// The threads argument: None = the engine default (ONEBIT_NUM_THREADS or all cores); < 1 rejected.
inline int pick_threads(const std::optional<int>& threads) {
  if (!threads) return default_num_threads();
  if (*threads < 1) fail("threads must be >= 1, got " + std::to_string(*threads));
  return *threads;
}

}  // namespace onebit::bind
