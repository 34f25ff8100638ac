// Checks of the output stage's parameters, shared by the binary and the int8 convolution dispatchers.
#include "onebit/output.h"

#include <stdexcept>
#include <string>

namespace onebit {

namespace {
[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }
}  // namespace

void check_output_stage(const OutputStage& st, int64_t cout) {
  switch (st.kind) {
    case OutputKind::int32: return;
    case OutputKind::bits:
      if (!st.threshold || !st.direction) fail("output 'bits' needs threshold and direction");
      for (int64_t c = 0; c < cout; ++c)
        if (st.direction[c] != 1 && st.direction[c] != -1)
          fail("direction must hold only +1 or -1 (channel " + std::to_string(c) + " has " +
               std::to_string(static_cast<int>(st.direction[c])) + ")");
      return;
    case OutputKind::int8:
      if (!st.multiplier || !st.bias) fail("output 'int8' needs multiplier, bias and shift");
      if (st.shift <= 0 || st.shift >= 32)
        fail("shift must satisfy 0 < shift < 32, got " + std::to_string(st.shift));
      return;
    case OutputKind::f32:
      if (!st.scale || !st.fbias) fail("output 'float' needs scale and bias");
      return;
  }
  fail("unknown output kind");
}

}  // namespace onebit
