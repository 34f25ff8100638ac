#include "onebit/isa.h"

#include <cstdlib>
#include <stdexcept>

#if defined(ONEBIT_HAVE_NEON) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace onebit {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
    case Isa::avxvnni: return "avxvnni";
  }
  return "unknown";
}

Isa isa_from_name(const std::string& name) {
  if (name == "scalar") return Isa::scalar;
  if (name == "avx2") return Isa::avx2;
  if (name == "avxvnni") return Isa::avxvnni;
  if (name == "avx512") return Isa::avx512;
  if (name == "neon") return Isa::neon;
  throw std::invalid_argument("unknown ISA '" + name + "' (expected scalar, avx2, avxvnni, avx512 or neon)");
}

namespace {
#if defined(ONEBIT_HAVE_NEON)
// Advanced SIMD: mandatory on aarch64 (HWCAP_ASIMD, bit 1); optional on 32-bit ARM (HWCAP_NEON,
// bit 12), where a build with NEON kernels may still run on a VFP-only core.
bool cpu_has_neon() {
#if defined(__aarch64__)
#if defined(__linux__)
  return (getauxval(AT_HWCAP) & (1UL << 1)) != 0;
#else
  return true;
#endif
#elif defined(__arm__) && defined(__linux__)
  return (getauxval(AT_HWCAP) & (1UL << 12)) != 0;
#else
  return false;
#endif
}
#endif
}  // namespace

bool cpu_has_neon_dotprod() {
#if defined(ONEBIT_HAVE_NEON) && defined(__aarch64__) && defined(__linux__)
  return (getauxval(AT_HWCAP) & (1UL << 20)) != 0;  // HWCAP_ASIMDDP
#else
  return false;
#endif
}

std::vector<std::string> cpu_features() {
  std::vector<std::string> out;
  if (cpu_has_neon_dotprod()) out.emplace_back("neon-dotprod");
  return out;
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
#if defined(ONEBIT_HAVE_X86)
    case Isa::avx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
    case Isa::avxvnni:
      __builtin_cpu_init();
      return isa_supported(Isa::avx2) && __builtin_cpu_supports("avxvnni");
    case Isa::avx512:
      __builtin_cpu_init();
      return isa_supported(Isa::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vpopcntdq") &&
             __builtin_cpu_supports("avx512vnni");
#endif
#if defined(ONEBIT_HAVE_NEON)
    case Isa::neon: return cpu_has_neon();
#endif
    default: return false;
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::neon})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

Isa default_isa() {
  if (const char* env = std::getenv("ONEBIT_ISA"); env && *env) {
    Isa isa = isa_from_name(env);
    if (!isa_supported(isa))
      throw std::runtime_error(std::string("ONEBIT_ISA=") + env + " but this CPU does not support it");
    return isa;
  }
  return supported_isas().back();
}

namespace {
Isa& active_slot() {
  static Isa isa = default_isa();
  return isa;
}
}  // namespace

Isa active_isa() { return active_slot(); }

void set_active_isa(Isa isa) {
  if (!isa_supported(isa))
    throw std::runtime_error(std::string("ISA ") + isa_name(isa) + " is not supported by this CPU");
  active_slot() = isa;
}

}  // namespace onebit
