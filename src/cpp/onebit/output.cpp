// Checks of the output stage's parameters, shared by the binary and the int8 convolution
// dispatchers, and the ops fused after an int8 stage (StageTail; built by stage_tail.cpp).
#include "onebit/output.h"

#include <stdexcept>
#include <string>

namespace onebit {

namespace {
[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }
}  // namespace

void check_output_stage(const OutputStage& st, int64_t cout) {
  if (st.tail) {
    if (st.kind != OutputKind::int8) fail("only an int8 output stage can be followed by a fused add or bitpack");
    if (st.tail->residual && !st.tail->add) fail("fused add without its kernel");
    if (st.tail->packed && !st.tail->pack) fail("fused bitpack without its kernel");
  }
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

void apply_stage_tail(const OutputStage& st, int64_t npix, int64_t pix0, int64_t c0, int64_t c1,
                      int64_t cout, void* out) {
  const StageTail* t = st.tail;
  if (!t || npix <= 0 || c1 <= c0) return;
  int8_t* q = static_cast<int8_t*>(out) + pix0 * cout;
  const int8_t* r = t->residual ? t->residual + pix0 * cout : nullptr;
  const int64_t words = (cout + 63) / 64;
  if (c0 == 0 && c1 == cout) {  // whole pixels: one contiguous block
    if (r) t->add(q, r, q, t->m_out, t->m_res, t->shift, 0, npix * cout);
    if (t->packed) t->pack(q, 0, npix, cout, t->packed + pix0 * words);
    return;
  }
  for (int64_t p = 0; p < npix; ++p) {  // a chunk of channels: its slice of each pixel
    int8_t* qp = q + p * cout + c0;
    if (r) t->add(qp, r + p * cout + c0, qp, t->m_out, t->m_res, t->shift, 0, c1 - c0);
    if (t->packed) t->pack(qp, 0, 1, c1 - c0, t->packed + (pix0 + p) * words + c0 / 64);
  }
}

}  // namespace onebit
