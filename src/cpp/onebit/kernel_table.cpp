// Registry of the per-op kernel tables and the check every table shares.
#include "onebit/kernel_table.h"

#include <mutex>
#include <stdexcept>

namespace onebit {

namespace {
std::vector<KernelTableInfo>& registry() {
  static std::vector<KernelTableInfo> tables;
  return tables;
}
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

void require_isa(Isa isa) {
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("ISA '") + isa_name(isa) + "' is not supported by this CPU or build");
}

void throw_missing_kernel(const char* op, Isa isa) {
  throw std::invalid_argument(std::string("no ") + op + " kernel for ISA '" + isa_name(isa) + "' in this build");
}

namespace detail {
void register_kernel_table(const KernelTableInfo& info) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().push_back(info);
}
}  // namespace detail

const std::vector<KernelTableInfo>& kernel_tables() { return registry(); }

std::string describe_kernel_tables() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::string out;
  for (const KernelTableInfo& t : registry()) {
    out += t.op + ":";
    for (int i = 0; i < kIsaCount; ++i)
      if (t.runs[i] >= 0)
        out += std::string(" ") + isa_name(static_cast<Isa>(i)) + "=" + isa_name(static_cast<Isa>(t.runs[i]));
    out += "\n";
  }
  return out;
}

}  // namespace onebit
