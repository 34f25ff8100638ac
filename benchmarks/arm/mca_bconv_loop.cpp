// Regions of the NEON binary conv inner loop (src/cpp/onebit/kernels/bconv_neon.cpp, included
// as it is) marked for llvm-mca. Built only by
// benchmarks/arm/mca_bconv.py (aarch64 cross compiler, -S); never part of the engine.
#include "../../src/cpp/onebit/kernels/bconv_neon.cpp"

namespace onebit::kernels {

// One 3x3 kernel row of a layer with W64 words per tap: 3*W64 words, 8 output channels
// (the aarch64 block), unrolled fast path, byte lanes widened once at the end of the row.
template <int Words>
void mca_row(const uint64_t* x, const uint64_t* const* w, int32_t* out) {
  Dot<kChannels, false, false> d;
  asm volatile("// LLVM-MCA-BEGIN row" ::: "memory");
  d.template run_fixed<Words>(x, w, nullptr);
  asm volatile("// LLVM-MCA-END" ::: "memory");
  d.totals(out);
}
template void mca_row<3>(const uint64_t*, const uint64_t* const*, int32_t*);
template void mca_row<6>(const uint64_t*, const uint64_t* const*, int32_t*);
template void mca_row<12>(const uint64_t*, const uint64_t* const*, int32_t*);
template void mca_row<24>(const uint64_t*, const uint64_t* const*, int32_t*);

}  // namespace onebit::kernels
