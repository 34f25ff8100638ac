#include "onebit/isa.h"

#include <cstdlib>
#include <stdexcept>

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
