// Per-op kernel tables: one row per ISA, filled once at start-up (static initialisation of the
// dispatcher's translation unit) from what this build compiled and what this CPU supports.
// A row either holds the ISA's own kernel or names, explicitly, the ISA whose kernel it runs
// (a fall-back such as "neon -> scalar" for an op without a NEON kernel). Rows of ISAs the CPU
// or build lacks stay empty, and get() gives every op the same error for them (never SIGILL).
// Adding an ISA = a row in each op's table, a kernels/*_<isa>.cpp file and a CMake line.
#pragma once
#include <array>
#include <initializer_list>
#include <string>
#include <vector>

#include "onebit/isa.h"

namespace onebit {

// std::invalid_argument("ISA 'x' is not supported by this CPU or build") unless isa_supported.
void require_isa(Isa isa);

// What one op runs for each ISA, for capabilities() and the kernel tests:
// runs[i] = the ISA whose kernel row i executes, or -1 when row i is empty (ISA unsupported).
struct KernelTableInfo {
  std::string op;
  std::array<int, kIsaCount> runs{};
};
// Every table built so far (all of them once static initialisation is over).
const std::vector<KernelTableInfo>& kernel_tables();
// Same as one line per op: "bconv: scalar=scalar avx2=avx2 neon=scalar ..." (empty rows left out).
std::string describe_kernel_tables();

namespace detail {
void register_kernel_table(const KernelTableInfo& info);
}

// Table entries: kernel_row(isa, fn) = the ISA's own kernel; fallback_row(isa, to) = `isa` runs
// the kernel of row `to` (listed before it), named so the table says what an ISA without its own
// kernel for the op executes.
template <class Fn>
struct OwnRow {
  Isa isa;
  Fn fn;
};
struct FallbackRow {
  Isa isa;
  Isa to;
};
template <class Fn>
OwnRow<Fn> kernel_row(Isa isa, Fn fn) {
  return {isa, fn};
}
inline FallbackRow fallback_row(Isa isa, Isa to) { return {isa, to}; }

// The row groups most tables share, each with its trailing comma; a group expands to nothing
// (or to its named fall-back) in a build without the ISA, so a table needs no #if of its own.
//   ONEBIT_AVX2_ROWS(f2)             avx2 runs f2; avx512 and avxvnni run the avx2 row
//   ONEBIT_AVX2_AVX512_ROWS(f2, f5)  avx2 runs f2, avx512 runs f5; avxvnni runs the avx2 row
//   ONEBIT_NEON_ROW(f)               neon runs f
//   ONEBIT_NEON64_ROW(f)             neon runs f on 64-bit ARM; 32-bit NEON (it flushes denormals
//                                    to zero) runs the scalar row
#if defined(ONEBIT_HAVE_X86)
#define ONEBIT_AVX2_ROWS(f2) \
  kernel_row(Isa::avx2, f2), fallback_row(Isa::avx512, Isa::avx2), fallback_row(Isa::avxvnni, Isa::avx2),
#define ONEBIT_AVX2_AVX512_ROWS(f2, f5) \
  kernel_row(Isa::avx2, f2), kernel_row(Isa::avx512, f5), fallback_row(Isa::avxvnni, Isa::avx2),
#else
#define ONEBIT_AVX2_ROWS(f2)
#define ONEBIT_AVX2_AVX512_ROWS(f2, f5)
#endif
#if defined(ONEBIT_HAVE_NEON)
#define ONEBIT_NEON_ROW(f) kernel_row(Isa::neon, f),
#else
#define ONEBIT_NEON_ROW(f)
#endif
#if defined(ONEBIT_HAVE_NEON) && defined(__aarch64__)
#define ONEBIT_NEON64_ROW(f) kernel_row(Isa::neon, f),
#else
#define ONEBIT_NEON64_ROW(f) fallback_row(Isa::neon, Isa::scalar),
#endif

// The table `<op>_table` of an op whose kernels are named kernels::<op>_<isa>, with the rows
// above; `neon_row` is ONEBIT_NEON_ROW or ONEBIT_NEON64_ROW. For example
// ONEBIT_AVX2_TABLE(add_int8, ONEBIT_NEON_ROW); declares add_int8_table("add_int8", ...).
#define ONEBIT_AVX2_TABLE(op, neon_row)                                                      \
  const KernelTable<decltype(&kernels::op##_scalar)> op##_table(                              \
      #op, {kernel_row(Isa::scalar, &kernels::op##_scalar), ONEBIT_AVX2_ROWS(&kernels::op##_avx2) \
                neon_row(&kernels::op##_neon)})
#define ONEBIT_AVX2_AVX512_TABLE(op, neon_row)                                               \
  const KernelTable<decltype(&kernels::op##_scalar)> op##_table(                              \
      #op, {kernel_row(Isa::scalar, &kernels::op##_scalar),                                   \
            ONEBIT_AVX2_AVX512_ROWS(&kernels::op##_avx2, &kernels::op##_avx512) neon_row(&kernels::op##_neon)})

template <class Fn>
class KernelTable {
 public:
  struct Entry {
    Entry(OwnRow<Fn> o) : isa(o.isa), fn(o.fn), to(o.isa) {}
    Entry(FallbackRow f) : isa(f.isa), fn(nullptr), to(f.to) {}
    Isa isa;
    Fn fn;
    Isa to;
  };

  // `entries` must start with the scalar row; ISAs this CPU does not support are left empty.
  KernelTable(const char* op, std::initializer_list<Entry> entries) : op_(op) {
    KernelTableInfo info;
    info.op = op;
    info.runs.fill(-1);
    for (const Entry& e : entries) {
      const int i = static_cast<int>(e.isa);
      if (!isa_supported(e.isa)) continue;
      const int from = static_cast<int>(e.to);
      fn_[i] = e.fn ? e.fn : fn_[from];
      runs_[i] = e.fn ? e.isa : runs_[from];
      info.runs[i] = static_cast<int>(runs_[i]);
    }
    detail::register_kernel_table(info);
  }

  // The kernel of `isa`'s row; the shared error for an ISA this CPU or build cannot run.
  Fn get(Isa isa) const {
    require_isa(isa);
    const Fn fn = fn_[static_cast<int>(isa)];
    if (!fn) throw_missing(isa);
    return fn;
  }
  // The ISA whose kernel `isa`'s row runs (itself, or its named fall-back).
  Isa runs(Isa isa) const {
    get(isa);
    return runs_[static_cast<int>(isa)];
  }

 private:
  [[noreturn]] void throw_missing(Isa isa) const;
  const char* op_;
  std::array<Fn, kIsaCount> fn_{};
  std::array<Isa, kIsaCount> runs_{};
};

[[noreturn]] void throw_missing_kernel(const char* op, Isa isa);

template <class Fn>
void KernelTable<Fn>::throw_missing(Isa isa) const {
  throw_missing_kernel(op_, isa);
}

}  // namespace onebit
