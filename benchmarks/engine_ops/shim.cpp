// One engine variant (a source tree compiled with -Donebit=onebit_<VARIANT>) behind plain C
// entry points ob_<VARIANT>_<op>, so two versions of the engine link into one harness.
#include <cstdint>
#include <cstring>

#include "onebit/conv8.h"
#include "onebit/densef.h"
#include "onebit/isa.h"
#include "onebit/pool.h"
#include "onebit/threadpool.h"

#define OB_CAT2(a, b) a##b
#define OB_CAT(a, b) OB_CAT2(a, b)
#define OB_FN(name) OB_CAT(OB_CAT(ob_, VARIANT), OB_CAT(_, name))

namespace ob = onebit;

extern "C" {

// out_kind: 0 int32, 1 bits, 2 int8, 3 float (the output-kind enum); stage parameters are fixed.
void OB_FN(conv8)(const uint8_t* x, int n, int h, int w, int cin, const int8_t* wt, int cout,
                  int k, int s, int p, const int32_t* zp, int out_kind, const int32_t* i32a,
                  const int32_t* i32b, const int8_t* dir, const float* scale, const float* bias,
                  int shift, void* y, int threads) {
  ob::Conv8Args a;
  a.x = x;
  a.zero_point = zp;
  a.w = wt;
  a.y = y;
  a.g.n = n; a.g.h = h; a.g.w = w; a.g.cin = cin; a.g.cout = cout;
  a.g.kh = a.g.kw = k; a.g.sh = a.g.sw = s; a.g.ph = a.g.pw = p;
  ob::conv8_geom_finish(a.g);
  a.stage.kind = static_cast<decltype(a.stage.kind)>(out_kind);
  a.stage.threshold = i32a;
  a.stage.direction = dir;
  a.stage.multiplier = i32a;
  a.stage.bias = i32b;
  a.stage.shift = shift;
  a.stage.scale = scale;
  a.stage.fbias = bias;
  ob::conv8(a, ob::Isa::avx2, threads);
}

void OB_FN(maxpool_f32)(const float* x, int n, int h, int w, int c, int k, int s, int p, float* y,
                        int threads) {
  ob::PoolGeom g;
  g.n = n; g.h = h; g.w = w; g.c = c; g.kh = g.kw = k; g.sh = g.sw = s; g.ph = g.pw = p;
  ob::pool_geom_finish(g);
  ob::maxpool_f32(x, y, g, ob::Isa::avx2, threads);
}

void OB_FN(dense_f32)(const float* x, const float* wt, const float* bias, float* y, int n, int in,
                      int out, int threads) {
  ob::dense_f32(x, wt, bias, y, n, in, out, ob::Isa::avx2, threads);
}

// A parallel region of n chunks each spinning `iters` loop iterations (0: empty tasks).
void OB_FN(region)(int n, int threads, int64_t iters, double* sink) {
  ob::parallel_for(n, threads, [&](int64_t a, int64_t b) {
    double s = 0;
    for (int64_t i = a * iters; i < b * iters; ++i) s += static_cast<double>(i) * 1e-9;
    if (s == -1.0) *sink = s;  // never true; keeps the loop
  });
}

}  // extern "C"
