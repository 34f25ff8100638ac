// make_stage_tail (onebit/output.h): the ops fused after an int8 output stage, with the add and
// bitpack kernels of the ISA's kernel table rows (kept apart from output.cpp, which the kernels
// link, so that a kernel needs no add or bitpack table).
#include <stdexcept>
#include <string>

#include "onebit/add.h"
#include "onebit/bitpack.h"
#include "onebit/output.h"

namespace onebit {

StageTail make_stage_tail(Isa isa, const int8_t* residual, int32_t m_out, int32_t m_res, int shift,
                          uint64_t* packed) {
  StageTail t;
  if (residual) {
    if (shift < 1 || shift > 31)
      throw std::invalid_argument("int8 add: shift must be in [1, 31], got " + std::to_string(shift));
    add_int8_reduce(m_out, m_res, shift);
    t.residual = residual;
    t.m_out = m_out;
    t.m_res = m_res;
    t.shift = shift;
    t.add = add_int8_kernel(isa);
  }
  if (packed) {
    t.packed = packed;
    t.pack = bitpack_i8_kernel(isa);
  }
  return t;
}

}  // namespace onebit
