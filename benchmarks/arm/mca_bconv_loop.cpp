// Regions of the NEON binary conv inner loop (src/cpp/onebit/kernels/bconv_neon.cpp, included
// as it is) marked for llvm-mca. Built only by
// benchmarks/arm/mca_bconv.py (aarch64 cross compiler, -S); never part of the engine.
#include "../../src/cpp/onebit/kernels/bconv_neon.cpp"

namespace onebit::kernels {

// One output pixel of a 3x3 layer with W64 words per tap (Words = 3*W64 per kernel row), 8
// output channels (the aarch64 block): three unrolled row runs, the widenings they need and the
// final sums (totals), everything the pixel's dot products cost apart from pointer set-up and
// the output stage.
template <int Words>
void mca_row(const uint64_t* x, const uint64_t* const* w, const uint64_t* const* w1, const uint64_t* const* w2,
             int64_t row_stride, int32_t* out) {
  Dot<kChannels, false> d;
  asm volatile("// LLVM-MCA-BEGIN row" ::: "memory");
  d.template run_fixed<Words, false>(x, w, nullptr);
  d.template run_fixed<Words, false>(x + row_stride, w1, nullptr);
  d.template run_fixed<Words, false>(x + 2 * row_stride, w2, nullptr);
  d.totals(out);
  asm volatile("// LLVM-MCA-END" ::: "memory");
}
#define ONEBIT_MCA_ROW(W)                                                                          \
  template void mca_row<W>(const uint64_t*, const uint64_t* const*, const uint64_t* const*, \
                           const uint64_t* const*, int64_t, int32_t*);
ONEBIT_MCA_ROW(3)
ONEBIT_MCA_ROW(6)
ONEBIT_MCA_ROW(12)
ONEBIT_MCA_ROW(24)

}  // namespace onebit::kernels
