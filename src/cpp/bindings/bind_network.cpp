// Bindings of the network kernels (pooling, residual add, int8 conv / dense, float dense).
// Every function takes its output array `out` (allocated by onebit.runtime.netkernels, or by an
// executor that preallocates buffers), checks dtype / contiguity / shape / parameters and raises
// ValueError (std::invalid_argument) with a message naming the argument; the logic lives in
// src/cpp/onebit. The GIL is released while a kernel runs.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "onebit/add.h"
#include "onebit/conv8.h"
#include "onebit/affine.h"
#include "onebit/densef.h"
#include "onebit/dwconv8.h"
#include "onebit/isa.h"
#include "onebit/pool.h"
#include "common.h"

namespace nb = nanobind;

namespace {

using namespace onebit::bind;  // the shared argument checks (common.h)

// The int8 convolutions' input: uint8 or int8 of `ndim` dimensions; sets `x_signed` for int8.
std::vector<int64_t> check_int8_input(const In& x, int ndim, bool& x_signed) {
  if (x.dtype() == nb::dtype<uint8_t>()) return check<uint8_t>(x, "x", ndim);
  if (x.dtype() == nb::dtype<int8_t>()) {
    x_signed = true;
    return check<int8_t>(x, "x", ndim);
  }
  throw std::invalid_argument("x must have dtype uint8 or int8");
}

void expect_shape(const std::vector<int64_t>& got, const std::vector<int64_t>& want,
                  const char* name) {
  if (got != want)
    throw std::invalid_argument(std::string(name) + " must have shape " + shape_str(want) +
                                ", got " + shape_str(got));
}

template <class T>
const T* vec_param(const std::optional<In>& a, const char* name, int64_t len) {
  if (!a) return nullptr;
  auto s = check<T>(*a, name, 1);
  if (s[0] != len)
    throw std::invalid_argument(std::string(name) + " must have " + std::to_string(len) +
                                " entries (one per output channel), got " + std::to_string(s[0]));
  return static_cast<const T*>(a->data());
}

onebit::PoolGeom pool_geom(const std::vector<int64_t>& s, int kh, int kw, int sh, int sw, int ph,
                           int pw, bool ceil_mode) {
  onebit::PoolGeom g;
  g.n = s[0]; g.h = s[1]; g.w = s[2]; g.c = s[3];
  g.kh = kh; g.kw = kw; g.sh = sh; g.sw = sw; g.ph = ph; g.pw = pw; g.ceil_mode = ceil_mode;
  onebit::pool_geom_finish(g);
  return g;
}

template <class T>
void pool_common(const In& x, Out& out, int kh, int kw, int sh, int sw, int ph, int pw,
                 bool ceil_mode, onebit::PoolGeom& g) {
  auto s = check<T>(x, "x", 4);
  g = pool_geom(s, kh, kw, sh, sw, ph, pw, ceil_mode);
  expect_shape(check<T>(out, "out", 4), {g.n, g.oh, g.ow, g.c}, "out");
}

#define POOL_ARGS nb::arg("x"), nb::arg("out"), nb::arg("kh"), nb::arg("kw"), nb::arg("sh"), \
                  nb::arg("sw"), nb::arg("ph"), nb::arg("pw")
#define ISA_ARGS nb::kw_only(), nb::arg("isa") = nb::none(), nb::arg("threads") = nb::none()
#define POOL_ISA_ARGS nb::kw_only(), nb::arg("ceil_mode") = false, nb::arg("isa") = nb::none(), \
                      nb::arg("threads") = nb::none()

onebit::OutputKind parse_output(const std::string& s) {
  if (s == "int32") return onebit::OutputKind::int32;
  if (s == "bits") return onebit::OutputKind::bits;
  if (s == "int8") return onebit::OutputKind::int8;
  if (s == "float") return onebit::OutputKind::f32;
  throw std::invalid_argument("output must be 'int32', 'bits', 'int8' or 'float', got '" + s + "'");
}

// Zero points argument (nullopt: all 0) checked against cin.
std::vector<int32_t> zero_points(const std::optional<In>& zero_point, int64_t cin) {
  std::vector<int32_t> zp(cin, 0);
  if (zero_point) {
    auto zs = check<int32_t>(*zero_point, "zero_point", 1);
    if (zs[0] != cin)
      throw std::invalid_argument("zero_point must have " + std::to_string(cin) +
                                  " entries (one per input channel), got " + std::to_string(zs[0]));
    const int32_t* z = static_cast<const int32_t*>(zero_point->data());
    zp.assign(z, z + cin);
  }
  return zp;
}

// Shared by conv2d_int8, conv2d_int8_prepared, dense_int8 and dwconv2d_int8: stage parameters,
// output checks, then run(threads) without the GIL (Args: Conv8Args or DwConv8Args).
template <class Args, class Run>
void run_staged(Args& a, Out& out,
                const std::string& output, const std::optional<In>& threshold,
                const std::optional<In>& direction, const std::optional<In>& multiplier,
                const std::optional<In>& bias, const std::optional<int>& shift,
                const std::optional<In>& scale, const std::vector<int64_t>& out_lead,
                const std::optional<int>& threads, Run run) {
  const onebit::Conv8Geom& g = a.g;
  onebit::OutputStage& st = a.stage;
  st.kind = parse_output(output);
  auto unexpected = [&](bool present, const char* name) {
    if (present)
      throw std::invalid_argument(std::string(name) + " is not used by output='" + output + "'");
  };
  auto required = [&](bool present, const char* name) {
    if (!present)
      throw std::invalid_argument("output='" + output + "' needs " + name);
  };
  std::vector<int64_t> want = out_lead;
  want.push_back(onebit::conv8_out_per_pixel(g, st.kind));
  switch (st.kind) {
    case onebit::OutputKind::int32:
      unexpected(threshold.has_value(), "threshold"); unexpected(direction.has_value(), "direction");
      unexpected(multiplier.has_value(), "multiplier"); unexpected(bias.has_value(), "bias");
      unexpected(shift.has_value(), "shift"); unexpected(scale.has_value(), "scale");
      expect_shape(check<int32_t>(out, "out", want.size()), want, "out");
      break;
    case onebit::OutputKind::bits:
      required(threshold.has_value(), "threshold"); required(direction.has_value(), "direction");
      unexpected(multiplier.has_value(), "multiplier"); unexpected(bias.has_value(), "bias");
      unexpected(shift.has_value(), "shift"); unexpected(scale.has_value(), "scale");
      st.threshold = vec_param<int32_t>(threshold, "threshold", g.cout);
      st.direction = vec_param<int8_t>(direction, "direction", g.cout);
      expect_shape(check<uint64_t>(out, "out", want.size()), want, "out");
      break;
    case onebit::OutputKind::int8:
      required(multiplier.has_value(), "multiplier"); required(bias.has_value(), "bias (int32)");
      required(shift.has_value(), "shift");
      unexpected(threshold.has_value(), "threshold"); unexpected(direction.has_value(), "direction");
      unexpected(scale.has_value(), "scale");
      st.multiplier = vec_param<int32_t>(multiplier, "multiplier", g.cout);
      st.bias = vec_param<int32_t>(bias, "bias", g.cout);
      st.shift = *shift;
      expect_shape(check<int8_t>(out, "out", want.size()), want, "out");
      break;
    case onebit::OutputKind::f32:
      required(scale.has_value(), "scale"); required(bias.has_value(), "bias (float32)");
      unexpected(threshold.has_value(), "threshold"); unexpected(direction.has_value(), "direction");
      unexpected(multiplier.has_value(), "multiplier"); unexpected(shift.has_value(), "shift");
      st.scale = vec_param<float>(scale, "scale", g.cout);
      st.fbias = vec_param<float>(bias, "bias", g.cout);
      expect_shape(check<float>(out, "out", want.size()), want, "out");
      break;
  }
  a.y = out.data();
  const int th = pick_threads(threads);
  nb::gil_scoped_release release;
  run(th);
}

// run_staged for the int8 convolutions (zero points already in `a`, or in a.prepared).
void run_conv8(onebit::Conv8Args& a, Out& out,
               const std::string& output, const std::optional<In>& threshold,
               const std::optional<In>& direction, const std::optional<In>& multiplier,
               const std::optional<In>& bias, const std::optional<int>& shift,
               const std::optional<In>& scale, const std::vector<int64_t>& out_lead,
               onebit::Isa is, const std::optional<int>& threads) {
  run_staged(a, out, output, threshold, direction, multiplier, bias, shift, scale, out_lead, threads,
             [&](int th) { onebit::conv8(a, is, th); });
}

// The finished geometry of a depthwise call: x (N, H, W, C) and weight (KH, KW, C) of type T.
template <class T>
onebit::Conv8Geom dw_geom(const In& x, const In& weight, int sh, int sw, int ph, int pw, int ph_end, int pw_end) {
  auto xs = check<T>(x, "x", 4);
  auto ws = check<T>(weight, "weight", 3);
  if (ws[2] != xs[3])
    throw std::invalid_argument("weight has " + std::to_string(ws[2]) + " channels (KH, KW, C), x has " +
                                std::to_string(xs[3]));
  onebit::Conv8Geom g;
  g.n = xs[0]; g.h = xs[1]; g.w = xs[2]; g.cin = g.cout = xs[3];
  g.kh = static_cast<int>(ws[0]); g.kw = static_cast<int>(ws[1]);
  g.sh = sh; g.sw = sw; g.ph = ph; g.pw = pw; g.ph_end = ph_end; g.pw_end = pw_end;
  onebit::dwconv8_geom_finish(g);
  return g;
}

struct PyConv8Prepared {
  std::shared_ptr<const onebit::Conv8Prepared> p;
};

#define STAGE_ARGS nb::arg("output") = "int32", nb::arg("threshold") = nb::none(), \
    nb::arg("direction") = nb::none(), nb::arg("multiplier") = nb::none(),         \
    nb::arg("bias") = nb::none(), nb::arg("shift") = nb::none(), nb::arg("scale") = nb::none()

// One max-pool binding per element type: checks (pool_common), ISA/threads, the kernel.
template <typename T, void (*Kernel)(const T*, T*, const onebit::PoolGeom&, onebit::Isa, int)>
void def_maxpool(nb::module_& m, const char* name, const char* doc) {
  m.def(name, [](const In& x, Out out, int kh, int kw, int sh, int sw, int ph, int pw, bool ceil_mode,
                 std::optional<std::string> isa, std::optional<int> threads) {
    onebit::PoolGeom g;
    pool_common<T>(x, out, kh, kw, sh, sw, ph, pw, ceil_mode, g);
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    Kernel(static_cast<const T*>(x.data()), static_cast<T*>(out.data()), g, is, th);
  }, POOL_ARGS, POOL_ISA_ARGS, doc);
}

}  // namespace

void bind_network(nb::module_& m) {
  def_maxpool<uint64_t, onebit::maxpool_bits>(
      m, "maxpool2d_bits",
      "Max pooling of packed bits (N,H,W,W64) uint64 into `out` (N,OH,OW,W64): bitwise AND.");
  def_maxpool<int8_t, onebit::maxpool_int8>(m, "maxpool2d_int8",
                                            "Max pooling of int8 NHWC into `out`; padding taps are ignored.");
  def_maxpool<float, onebit::maxpool_f32>(m, "maxpool2d_float",
                                          "Max pooling of float32 NHWC into `out`; padding taps are ignored.");

  m.def("avgpool2d_int8", [](const In& x, Out out, int kh, int kw, int sh, int sw, int ph, int pw,
                             bool count_include_pad, bool ceil_mode, std::optional<std::string> isa,
                             std::optional<int> threads) {
    onebit::PoolGeom g;
    pool_common<int8_t>(x, out, kh, kw, sh, sw, ph, pw, ceil_mode, g);
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    onebit::avgpool_int8(static_cast<const int8_t*>(x.data()), static_cast<int8_t*>(out.data()),
                         g, count_include_pad, is, th);
  }, POOL_ARGS, nb::arg("count_include_pad"), POOL_ISA_ARGS,
  "Average pooling of int8 NHWC: clamp(floor((2s + d) / 2d), -127, 127).");

  m.def("avgpool2d_float", [](const In& x, Out out, int kh, int kw, int sh, int sw, int ph, int pw,
                              bool count_include_pad, bool ceil_mode, std::optional<std::string> isa,
                              std::optional<int> threads) {
    onebit::PoolGeom g;
    pool_common<float>(x, out, kh, kw, sh, sw, ph, pw, ceil_mode, g);
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    onebit::avgpool_f32(static_cast<const float*>(x.data()), static_cast<float*>(out.data()), g,
                        count_include_pad, is, th);
  }, POOL_ARGS, nb::arg("count_include_pad"), POOL_ISA_ARGS, "Average pooling of float32 NHWC.");

  m.def("global_avgpool_int8", [](const In& x, Out out, std::optional<std::string> isa,
                                  std::optional<int> threads) {
    auto s = check<int8_t>(x, "x", 4);
    expect_shape(check<int8_t>(out, "out", 2), {s[0], s[3]}, "out");
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    onebit::global_avgpool_int8(static_cast<const int8_t*>(x.data()),
                                static_cast<int8_t*>(out.data()), s[0], s[1] * s[2], s[3], is, th);
  }, nb::arg("x"), nb::arg("out"), ISA_ARGS, "Global average pooling int8 (N,H,W,C) -> int8 (N,C).");

  m.def("global_avgpool_int8_float", [](const In& x, Out out, float scale,
                                        std::optional<std::string> isa, std::optional<int> threads) {
    auto s = check<int8_t>(x, "x", 4);
    expect_shape(check<float>(out, "out", 2), {s[0], s[3]}, "out");
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    onebit::global_avgpool_int8_f32(static_cast<const int8_t*>(x.data()),
                                    static_cast<float*>(out.data()), s[0], s[1] * s[2], s[3],
                                    scale, is, th);
  }, nb::arg("x"), nb::arg("out"), nb::arg("scale"), ISA_ARGS,
  "Global average pooling int8 (N,H,W,C) -> float32 (N,C): float(sum) * float32(scale / (H*W)).");

  m.def("global_avgpool_float", [](const In& x, Out out, std::optional<std::string> isa,
                                   std::optional<int> threads) {
    auto s = check<float>(x, "x", 4);
    expect_shape(check<float>(out, "out", 2), {s[0], s[3]}, "out");
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    onebit::global_avgpool_f32(static_cast<const float*>(x.data()), static_cast<float*>(out.data()),
                               s[0], s[1] * s[2], s[3], is, th);
  }, nb::arg("x"), nb::arg("out"), ISA_ARGS, "Global average pooling float32 (N,H,W,C) -> (N,C).");

  m.def("add_int8", [](const In& a, const In& b, Out out, int32_t ma, int32_t mb, int shift,
                       std::optional<std::string> isa, std::optional<int> threads) {
    auto sa = check<int8_t>(a, "a", a.ndim());
    expect_shape(check<int8_t>(b, "b", b.ndim()), sa, "b");
    expect_shape(check<int8_t>(out, "out", out.ndim()), sa, "out");
    int64_t count = 1;
    for (auto d : sa) count *= d;
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    onebit::add_int8(static_cast<const int8_t*>(a.data()), static_cast<const int8_t*>(b.data()),
                     static_cast<int8_t*>(out.data()), count, ma, mb, shift, is, th);
  }, nb::arg("a"), nb::arg("b"), nb::arg("out"), nb::arg("ma"), nb::arg("mb"), nb::arg("shift"),
  ISA_ARGS, "int8 residual add: clamp((a*ma + b*mb + 2^(shift-1)) >> shift, -127, 127).");

  m.def("add_float", [](const In& a, const In& b, Out out, std::optional<std::string> isa,
                        std::optional<int> threads) {
    auto sa = check<float>(a, "a", a.ndim());
    expect_shape(check<float>(b, "b", b.ndim()), sa, "b");
    expect_shape(check<float>(out, "out", out.ndim()), sa, "out");
    int64_t count = 1;
    for (auto d : sa) count *= d;
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    onebit::add_f32(static_cast<const float*>(a.data()), static_cast<const float*>(b.data()),
                    static_cast<float*>(out.data()), count, is, th);
  }, nb::arg("a"), nb::arg("b"), nb::arg("out"), ISA_ARGS, "float32 elementwise a + b.");

  m.def("conv2d_int8", [](const In& x, const In& weight, Out out, int sh, int sw, int ph, int pw,
                          std::optional<In> zero_point, std::string output,
                          std::optional<In> threshold, std::optional<In> direction,
                          std::optional<In> multiplier, std::optional<In> bias,
                          std::optional<int> shift, std::optional<In> scale,
                          std::optional<std::string> isa, std::optional<int> threads, int ph_end,
                          int pw_end) {
    onebit::Conv8Args a;
    const std::vector<int64_t> xs = check_int8_input(x, 4, a.x_signed);
    auto ws = check<int8_t>(weight, "weight", 4);
    if (ws[3] != xs[3])
      throw std::invalid_argument("weight has " + std::to_string(ws[3]) +
                                  " input channels (OHWI), x has " + std::to_string(xs[3]));
    onebit::Conv8Geom& g = a.g;
    g.n = xs[0]; g.h = xs[1]; g.w = xs[2]; g.cin = xs[3]; g.cout = ws[0];
    g.kh = static_cast<int>(ws[1]); g.kw = static_cast<int>(ws[2]);
    g.sh = sh; g.sw = sw; g.ph = ph; g.pw = pw; g.ph_end = ph_end; g.pw_end = pw_end;
    onebit::conv8_geom_finish(g);
    a.x = x.data();
    a.w = static_cast<const int8_t*>(weight.data());
    const std::vector<int32_t> zp = zero_points(zero_point, g.cin);
    a.zero_point = zp.data();
    run_conv8(a, out, output, threshold, direction, multiplier, bias, shift, scale,
              {g.n, g.oh, g.ow}, pick_isa(isa), threads);
  }, nb::arg("x"), nb::arg("weight"), nb::arg("out"), nb::arg("sh"), nb::arg("sw"), nb::arg("ph"),
  nb::arg("pw"), nb::arg("zero_point") = nb::none(), STAGE_ARGS, ISA_ARGS,
  nb::arg("ph_end") = onebit::Conv8Geom::kSymmetric, nb::arg("pw_end") = onebit::Conv8Geom::kSymmetric,
  "int8 convolution: uint8/int8 NHWC x, int8 OHWI weight, int32 accumulation, output stage "
  "(ph_end/pw_end: padding after the input, default ph/pw).");

  m.def("dwconv2d_int8", [](const In& x, const In& weight, Out out, int sh, int sw, int ph, int pw,
                            std::string output, std::optional<In> threshold,
                            std::optional<In> direction, std::optional<In> multiplier,
                            std::optional<In> bias, std::optional<int> shift, std::optional<In> scale,
                            std::optional<std::string> isa, std::optional<int> threads, int ph_end,
                            int pw_end) {
    onebit::DwConv8Args a;
    const onebit::Conv8Geom& g = a.g = dw_geom<int8_t>(x, weight, sh, sw, ph, pw, ph_end, pw_end);
    a.x = static_cast<const int8_t*>(x.data());
    a.w = static_cast<const int8_t*>(weight.data());
    const onebit::Isa is = pick_isa(isa);
    run_staged(a, out, output, threshold, direction, multiplier, bias, shift, scale, {g.n, g.oh, g.ow}, threads,
               [&](int th) { onebit::dwconv8(a, is, th); });
  }, nb::arg("x"), nb::arg("weight"), nb::arg("out"), nb::arg("sh"), nb::arg("sw"), nb::arg("ph"),
  nb::arg("pw"), STAGE_ARGS, ISA_ARGS,
  nb::arg("ph_end") = onebit::Conv8Geom::kSymmetric, nb::arg("pw_end") = onebit::Conv8Geom::kSymmetric,
  "int8 depthwise convolution: int8 NHWC x, int8 (KH, KW, C) weight, int32 accumulation, output stage "
  "(ph_end/pw_end: padding after the input, default ph/pw).");

  m.def("dwconv2d_float", [](const In& x, const In& weight, const In& bias, Out out, int sh, int sw, int ph,
                             int pw, std::optional<std::string> isa, std::optional<int> threads, int ph_end,
                             int pw_end) {
    onebit::DwConvF32Args a;
    const onebit::Conv8Geom& g = a.g = dw_geom<float>(x, weight, sh, sw, ph, pw, ph_end, pw_end);
    expect_shape(check<float>(bias, "bias", 1), {g.cin}, "bias");
    expect_shape(check<float>(out, "out", 4), {g.n, g.oh, g.ow, g.cin}, "out");
    a.x = static_cast<const float*>(x.data());
    a.w = static_cast<const float*>(weight.data());
    a.bias = static_cast<const float*>(bias.data());
    a.y = static_cast<float*>(out.data());
    const onebit::Isa is = pick_isa(isa);
    const int th = pick_threads(threads);
    nb::gil_scoped_release release;
    onebit::dwconv_f32(a, is, th);
  }, nb::arg("x"), nb::arg("weight"), nb::arg("bias"), nb::arg("out"), nb::arg("sh"), nb::arg("sw"), nb::arg("ph"),
  nb::arg("pw"), ISA_ARGS,
  nb::arg("ph_end") = onebit::Conv8Geom::kSymmetric, nb::arg("pw_end") = onebit::Conv8Geom::kSymmetric,
  "float32 depthwise convolution: NHWC x, (KH, KW, C) weight, (C,) bias; taps in row-major order, no FMA "
  "(ph_end/pw_end: padding after the input, default ph/pw).");

  m.def("dense_int8", [](const In& x, const In& weight, Out out, std::optional<In> zero_point,
                         std::string output, std::optional<In> threshold,
                         std::optional<In> direction, std::optional<In> multiplier,
                         std::optional<In> bias, std::optional<int> shift,
                         std::optional<In> scale, std::optional<std::string> isa,
                         std::optional<int> threads) {
    onebit::Conv8Args a;
    const std::vector<int64_t> xs = check_int8_input(x, 2, a.x_signed);
    auto ws = check<int8_t>(weight, "weight", 2);
    if (ws[1] != xs[1])
      throw std::invalid_argument("weight has " + std::to_string(ws[1]) +
                                  " input features, x has " + std::to_string(xs[1]));
    onebit::Conv8Geom& g = a.g;  // a dense layer is a 1x1 conv on a 1x1 image
    g.n = xs[0]; g.h = 1; g.w = 1; g.cin = xs[1]; g.cout = ws[0];
    onebit::conv8_geom_finish(g);
    a.x = x.data();
    a.w = static_cast<const int8_t*>(weight.data());
    const std::vector<int32_t> zp = zero_points(zero_point, g.cin);
    a.zero_point = zp.data();
    run_conv8(a, out, output, threshold, direction, multiplier, bias, shift, scale,
              {g.n}, pick_isa(isa), threads);
  }, nb::arg("x"), nb::arg("weight"), nb::arg("out"), nb::arg("zero_point") = nb::none(),
  STAGE_ARGS, ISA_ARGS, "int8 dense: (N, in) x (out, in) int8 -> int32 -> output stage.");

  nb::class_<PyConv8Prepared>(m, "Conv8Prepared",
                              "int8 conv weights laid out once for one ISA's kernel (prepare_conv8).")
      .def_prop_ro("isa", [](const PyConv8Prepared& p) { return std::string(onebit::isa_name(p.p->isa)); })
      .def_prop_ro("kernel", [](const PyConv8Prepared& p) { return std::string(onebit::isa_name(p.p->kernel)); },
                   "The kernel that runs: the ISA's, or avx2's when zero points rule out VNNI.")
      .def_prop_ro("signed", [](const PyConv8Prepared& p) { return p.p->x_signed; })
      .def_prop_ro("shape", [](const PyConv8Prepared& p) {
        return nb::make_tuple(p.p->cout, p.p->kh, p.p->kw, p.p->cin);
      })
      .def("__repr__", [](const PyConv8Prepared& p) {
        return "Conv8Prepared(isa='" + std::string(onebit::isa_name(p.p->isa)) + "', shape=(" +
               std::to_string(p.p->cout) + ", " + std::to_string(p.p->kh) + ", " +
               std::to_string(p.p->kw) + ", " + std::to_string(p.p->cin) + "), " +
               (p.p->x_signed ? "int8" : "uint8") + " input)";
      });

  m.def("prepare_conv8", [](const In& weight, std::optional<In> zero_point, bool is_signed,
                            std::optional<std::string> isa, std::optional<int> threads) {
    auto ws = check<int8_t>(weight, "weight", 4);
    const std::vector<int32_t> zp = zero_points(zero_point, ws[3]);
    const onebit::Isa is = pick_isa(isa);
    const int th = pick_threads(threads);
    PyConv8Prepared r;
    nb::gil_scoped_release rel;
    r.p = onebit::conv8_prepare(static_cast<const int8_t*>(weight.data()), ws[0],
                                static_cast<int>(ws[1]), static_cast<int>(ws[2]), ws[3], zp.data(),
                                is_signed, is, th);
    return r;
  }, nb::arg("weight"), nb::kw_only(), nb::arg("zero_point") = nb::none(),
  nb::arg("signed") = false, nb::arg("isa") = nb::none(), nb::arg("threads") = nb::none(),
  "Lays out int8 OHWI conv weights once for one ISA (uint8 input, or int8 with signed=True).");

  m.def("conv2d_int8_prepared", [](const In& x, const PyConv8Prepared& prepared, Out out, int sh,
                                   int sw, int ph, int pw, std::string output,
                                   std::optional<In> threshold, std::optional<In> direction,
                                   std::optional<In> multiplier, std::optional<In> bias,
                                   std::optional<int> shift, std::optional<In> scale,
                                   std::optional<int> threads) {
    onebit::Conv8Args a;
    const onebit::Conv8Prepared& p = *prepared.p;
    const std::vector<int64_t> xs = check_int8_input(x, 4, a.x_signed);
    if (xs[3] != p.cin)
      throw std::invalid_argument("prepared weights have " + std::to_string(p.cin) +
                                  " input channels, x has " + std::to_string(xs[3]));
    onebit::Conv8Geom& g = a.g;
    g.n = xs[0]; g.h = xs[1]; g.w = xs[2]; g.cin = xs[3]; g.cout = p.cout;
    g.kh = p.kh; g.kw = p.kw;
    g.sh = sh; g.sw = sw; g.ph = ph; g.pw = pw;
    onebit::conv8_geom_finish(g);
    a.x = x.data();
    a.prepared = &p;
    run_conv8(a, out, output, threshold, direction, multiplier, bias, shift, scale,
              {g.n, g.oh, g.ow}, p.isa, threads);
  }, nb::arg("x"), nb::arg("prepared"), nb::arg("out"), nb::arg("sh"), nb::arg("sw"), nb::arg("ph"),
  nb::arg("pw"), STAGE_ARGS, nb::kw_only(), nb::arg("threads") = nb::none(),
  "conv2d_int8 with weights from prepare_conv8 (their ISA runs).");

  m.def("int8_mac_peak", [](std::optional<std::string> isa, double seconds) {
    const onebit::Isa is = pick_isa(isa);
    if (!(seconds > 0 && seconds <= 60)) throw std::invalid_argument("seconds must be in (0, 60]");
    nb::gil_scoped_release rel;
    return onebit::int8_mac_peak(is, seconds);
  }, nb::arg("isa") = nb::none(), nb::arg("seconds") = 0.2,
  "Peak int8 multiply-add rate (MACs/s) of one thread running the int8 conv kernel's inner step.");

  m.def("dense_float", [](const In& x, const In& weight, std::optional<In> bias, Out out,
                          std::optional<std::string> isa, std::optional<int> threads) {
    auto xs = check<float>(x, "x", 2);
    auto ws = check<float>(weight, "weight", 2);
    if (ws[1] != xs[1])
      throw std::invalid_argument("weight has " + std::to_string(ws[1]) +
                                  " input features, x has " + std::to_string(xs[1]));
    const float* b = vec_param<float>(bias, "bias", ws[0]);
    expect_shape(check<float>(out, "out", 2), {xs[0], ws[0]}, "out");
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    onebit::dense_f32(static_cast<const float*>(x.data()), static_cast<const float*>(weight.data()),
                      b, static_cast<float*>(out.data()), xs[0], xs[1], ws[0], is, th);
  }, nb::arg("x"), nb::arg("weight"), nb::arg("bias").none(), nb::arg("out"), ISA_ARGS,
  "float32 dense x @ weight.T + bias with the fixed 8-lane summation order of onebit/densef.h.");

  m.def("affine_float", [](const In& x, const In& scale, const In& bias, Out out, std::optional<std::string> isa,
                           std::optional<int> threads) {
    auto xs = check<float>(x, "x", 2);
    const float* sc = vec_param<float>(scale, "scale", xs[1]);
    const float* b = vec_param<float>(bias, "bias", xs[1]);
    expect_shape(check<float>(out, "out", 2), {xs[0], xs[1]}, "out");
    auto is = pick_isa(isa);
    int th = pick_threads(threads);
    nb::gil_scoped_release rel;
    onebit::affine_f32(static_cast<const float*>(x.data()), sc, b, static_cast<float*>(out.data()), xs[0], xs[1],
                       is, th);
  }, nb::arg("x"), nb::arg("scale"), nb::arg("bias"), nb::arg("out"), ISA_ARGS,
  "float32 per-channel x * scale + bias (two roundings) over (pixels, channels), onebit/affine.h.");
}
