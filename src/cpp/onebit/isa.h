// Instruction-set selection. One name per ISA, used the same in C++, Python, the
// ONEBIT_ISA environment variable, test ids and benchmark rows: scalar, avx2, avxvnni, avx512,
// neon. avxvnni is AVX2 plus the 256-bit VNNI instructions (vpdpbusd on ymm, no AVX-512): only
// the int8 convolution has a kernel of its own for it; every other op runs its avx2 kernel.
#pragma once
#include <string>
#include <vector>

namespace onebit {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2, neon = 3, avxvnni = 4 };
constexpr int kIsaCount = 5;  // one more than the largest Isa value (kernel tables have a row each)

const char* isa_name(Isa isa);
// Parses "scalar" / "avx2" / "avxvnni" / "avx512" / "neon"; throws std::invalid_argument otherwise.
Isa isa_from_name(const std::string& name);

// True when the running CPU (and this build) can execute kernels of that ISA.
// avx2 needs AVX2+FMA+BMI2+POPCNT; avxvnni needs avx2 + AVX-VNNI; avx512 needs AVX-512
// F/BW/VL/DQ + VPOPCNTDQ + VNNI.
bool isa_supported(Isa isa);
// In increasing order: scalar, avx2, avxvnni, avx512 (those this CPU and build support).
std::vector<Isa> supported_isas();

// The ISA whose kernels an op without an avxvnni form runs (avxvnni -> avx2, others unchanged).
inline Isa kernel_isa(Isa isa) { return isa == Isa::avxvnni ? Isa::avx2 : isa; }
// Armv8.2 dot product (SDOT/UDOT; aarch64 HWCAP_ASIMDDP): the NEON int8 convolution uses it
// when present (a capability of ISA neon, not an ISA of its own). False off aarch64.
bool cpu_has_neon_dotprod();
// Capabilities of this CPU and build that kernels use within an ISA, by name, for
// capabilities() and the C API: "neon-dotprod" (Armv8.2 dot product, the NEON int8 convolution's
// SDOT variant). Empty where none applies (every x86 CPU: its variants are ISAs of their own).
std::vector<std::string> cpu_features();

// Best supported ISA, unless ONEBIT_ISA names one (std::runtime_error if the CPU lacks it).
Isa default_isa();

// The ISA kernels use when a call does not name one. Starts as default_isa();
// set_active_isa throws std::runtime_error for an ISA the CPU lacks.
Isa active_isa();
void set_active_isa(Isa isa);

}  // namespace onebit
