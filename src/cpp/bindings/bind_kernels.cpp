// Bindings of the core engine kernels: bitpack, bconv2d, bdense, popcount_peak.
// They only convert and check (dtype, C-contiguity, ndim, shapes, channel counts, stage
// parameters) and raise ValueError (std::invalid_argument) with a message naming the problem;
// the kernels themselves live in src/cpp/onebit and never see Python.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "onebit/bconv.h"
#include "onebit/bitpack.h"
#include "onebit/bplanes.h"
#include "onebit/isa.h"
#include "onebit/threadpool.h"
#include "common.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using AnyArray = onebit::bind::In;
using OutArray = onebit::bind::Out;
using namespace onebit::bind;  // the shared argument checks (common.h)


// A packed array must hold exactly ceil(channels / 64) words per pixel / tap / row.
void check_words(const char* name, int64_t words, const char* per, const char* channels_name, int64_t channels) {
  const int64_t need = (channels + 63) / 64;
  if (words != need)
    fail(std::string(name) + " has " + std::to_string(words) + " words per " + per + " but " + channels_name +
         "=" + std::to_string(channels) + " needs " + std::to_string(need));
}

void check_ndim(const char* name, const AnyArray& a, size_t ndim, const char* layout) {
  if (a.ndim() != ndim)
    fail(std::string(name) + " must be " + std::to_string(ndim) + "-D " + layout + ", got shape " + shape_str(a));
}

// A per-output-channel parameter vector: 1-D, exact dtype, length cout.
template <typename T>
const T* channel_param(const std::optional<AnyArray>& a, const char* name, const char* dtype,
                       int64_t cout, const char* output) {
  if (!a) fail(std::string("output='") + output + "' needs " + name);
  check_array<T>(name, *a, dtype);
  if (a->ndim() != 1 || static_cast<int64_t>(a->shape(0)) != cout)
    fail(std::string(name) + " must have shape (" + std::to_string(cout) + ",) (one per output channel), got " +
         shape_str(*a));
  return static_cast<const T*>(a->data());
}

void check_padding_bits(const char* name, const uint64_t* words, int64_t rows, int64_t w64, int64_t channels) {
  if (channels % 64 == 0) return;
  const uint64_t pad_mask = ~((uint64_t{1} << (channels % 64)) - 1);
  for (int64_t r = 0; r < rows; ++r)
    if (words[r * w64 + w64 - 1] & pad_mask)
      fail(std::string(name) + " has nonzero padding bits above channel " + std::to_string(channels) +
           " (in_channels mismatch, or not packed by onebit)");
}

struct StageArgs {
  std::string output;
  std::optional<AnyArray> threshold, direction, multiplier, bias, scale;
  std::optional<int> shift;
};

// Builds the OutputStage, keeping converted storage (direction as int8) alive in `dir`.
onebit::OutputStage make_stage(const StageArgs& sa, int64_t cout, std::vector<int8_t>& dir) {
  onebit::OutputStage st;
  const char* o = sa.output.c_str();
  auto reject = [&](const std::optional<AnyArray>& a, const char* name) {
    if (a) fail(std::string(name) + " is not used by output='" + sa.output + "'");
  };
  if (sa.output == "int32") {
    st.kind = onebit::OutputKind::int32;
    reject(sa.threshold, "threshold"); reject(sa.direction, "direction"); reject(sa.multiplier, "multiplier");
    reject(sa.bias, "bias"); reject(sa.scale, "scale");
  } else if (sa.output == "bits") {
    st.kind = onebit::OutputKind::bits;
    reject(sa.multiplier, "multiplier"); reject(sa.bias, "bias"); reject(sa.scale, "scale");
    st.threshold = channel_param<int32_t>(sa.threshold, "threshold", "int32", cout, o);
    if (!sa.direction) fail("output='bits' needs direction");
    const AnyArray& d = *sa.direction;
    if (d.ndim() != 1 || static_cast<int64_t>(d.shape(0)) != cout)
      fail("direction must have shape (" + std::to_string(cout) + ",), got " + shape_str(d));
    dir.resize(static_cast<size_t>(cout));
    if (d.dtype() == nb::dtype<int8_t>()) {
      check_array<int8_t>("direction", d, "int8 or int32");
      for (int64_t c = 0; c < cout; ++c) dir[c] = static_cast<const int8_t*>(d.data())[c];
    } else if (d.dtype() == nb::dtype<int32_t>()) {
      check_array<int32_t>("direction", d, "int8 or int32");
      for (int64_t c = 0; c < cout; ++c) {
        const int32_t v = static_cast<const int32_t*>(d.data())[c];
        dir[c] = static_cast<int8_t>(v == 1 ? 1 : v == -1 ? -1 : 0);  // 0 is rejected below
      }
    } else {
      fail("direction must have dtype int8 or int32, got " + dtype_name(d.dtype()));
    }
    st.direction = dir.data();
  } else if (sa.output == "int8") {
    st.kind = onebit::OutputKind::int8;
    reject(sa.threshold, "threshold"); reject(sa.direction, "direction"); reject(sa.scale, "scale");
    st.multiplier = channel_param<int32_t>(sa.multiplier, "multiplier", "int32", cout, o);
    st.bias = channel_param<int32_t>(sa.bias, "bias", "int32", cout, o);
    if (!sa.shift) fail("output='int8' needs shift");
    st.shift = *sa.shift;
  } else if (sa.output == "float") {
    st.kind = onebit::OutputKind::f32;
    reject(sa.threshold, "threshold"); reject(sa.direction, "direction"); reject(sa.multiplier, "multiplier");
    st.scale = channel_param<float>(sa.scale, "scale", "float32", cout, o);
    st.fbias = channel_param<float>(sa.bias, "bias", "float32", cout, o);
  } else {
    fail("output must be 'int32', 'bits', 'int8' or 'float', got '" + sa.output + "'");
  }
  if (sa.shift && st.kind != onebit::OutputKind::int8) fail("shift is only used by output='int8'");
  return st;
}

template <typename T>
nb::object new_array(const std::vector<size_t>& shape) {
  size_t n = 1;
  for (size_t d : shape) n *= d;
  T* data = new T[n ? n : 1];
  nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<T*>(p); });
  return nb::ndarray<nb::numpy, T>(data, shape.size(), shape.data(), owner).cast();
}

// Returns (python object, data pointer) for the result: a new array, or the caller's `out`
// after checking its dtype and shape.
template <typename T>
std::pair<nb::object, void*> result_array(const nb::object& out, const std::vector<size_t>& shape,
                                          const char* dtype) {
  if (out.is_none()) {
    nb::object arr = new_array<T>(shape);
    return {arr, nb::cast<OutArray>(arr).data()};
  }
  OutArray o;
  if (!nb::try_cast<OutArray>(out, o)) fail("out must be a writable NumPy array");
  AnyArray ro = nb::cast<AnyArray>(out);
  check_array<T>("out", ro, dtype);
  bool same = ro.ndim() == shape.size();
  for (size_t i = 0; same && i < shape.size(); ++i) same = ro.shape(i) == shape[i];
  if (!same) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    fail("out must have shape " + want + "), got " + shape_str(ro));
  }
  return {out, o.data()};
}

int64_t parse_padding(const std::variant<int64_t, std::string>& padding, int64_t kh, int64_t kw) {
  if (std::holds_alternative<int64_t>(padding)) return std::get<int64_t>(padding);
  const std::string& p = std::get<std::string>(padding);
  if (p == "valid") return 0;
  if (p == "same") {
    if (kh != kw || kh % 2 == 0)
      fail("padding='same' needs a square kernel of odd size (symmetric padding), got " +
           std::to_string(kh) + "x" + std::to_string(kw));
    return (kh - 1) / 2;
  }
  fail("padding must be an int, 'same' or 'valid', got '" + p + "'");
}

nb::object py_bitpack(const AnyArray& x, const std::optional<std::string>& isa_name,
                      const std::optional<int>& threads, const nb::object& out) {
  if (x.ndim() < 1) fail("x must have at least one axis (channels last)");
  const onebit::Isa isa = pick_isa(isa_name);
  const int nthreads = pick_threads(threads);
  const int64_t c = static_cast<int64_t>(x.shape(x.ndim() - 1));
  if (c < 1) fail("x must have at least one channel");
  int64_t pixels = 1;
  std::vector<size_t> shape;
  for (size_t i = 0; i + 1 < x.ndim(); ++i) {
    pixels *= static_cast<int64_t>(x.shape(i));
    shape.push_back(x.shape(i));
  }
  shape.push_back(static_cast<size_t>((c + 63) / 64));
  if (x.dtype() == nb::dtype<float>()) {
    check_array<float>("x", x, "float32 or int8");
    auto [obj, ptr] = result_array<uint64_t>(out, shape, "uint64");
    nb::gil_scoped_release release;
    onebit::bitpack_f32(static_cast<const float*>(x.data()), pixels, c, static_cast<uint64_t*>(ptr), isa, nthreads);
    return obj;
  }
  if (x.dtype() == nb::dtype<int8_t>()) {
    check_array<int8_t>("x", x, "float32 or int8");
    auto [obj, ptr] = result_array<uint64_t>(out, shape, "uint64");
    nb::gil_scoped_release release;
    onebit::bitpack_i8(static_cast<const int8_t*>(x.data()), pixels, c, static_cast<uint64_t*>(ptr), isa, nthreads);
    return obj;
  }
  fail("x must have dtype float32 or int8, got " + dtype_name(x.dtype()));
}

std::pair<nb::object, void*> stage_result(const onebit::OutputStage& st, const nb::object& out,
                                          std::vector<size_t> shape, int64_t cout) {
  switch (st.kind) {
    case onebit::OutputKind::bits:
      shape.push_back(static_cast<size_t>((cout + 63) / 64));
      return result_array<uint64_t>(out, shape, "uint64");
    case onebit::OutputKind::int8:
      shape.push_back(static_cast<size_t>(cout));
      return result_array<int8_t>(out, shape, "int8");
    case onebit::OutputKind::f32:
      shape.push_back(static_cast<size_t>(cout));
      return result_array<float>(out, shape, "float32");
    default:
      shape.push_back(static_cast<size_t>(cout));
      return result_array<int32_t>(out, shape, "int32");
  }
}

// Weights argument: a packed uint64 array, or PreparedWeights from prepare_weights().
struct WeightsArg {
  const uint64_t* ptr = nullptr;
  const onebit::PreparedWeights* prepared = nullptr;
  std::vector<int64_t> shape;  // (Cout, KH, KW, W64) or (Cout, W64)
};

struct PyPrepared {
  std::shared_ptr<const onebit::PreparedWeights> p;
  std::vector<int64_t> shape;  // the packed shape it was made from
};

WeightsArg weights_arg(const nb::object& w, size_t ndim, const char* layout, int64_t in_channels) {
  WeightsArg r;
  if (nb::isinstance<PyPrepared>(w)) {
    const PyPrepared& pp = nb::cast<const PyPrepared&>(w);
    if (pp.shape.size() != ndim)
      fail(std::string("prepared weights have shape of ndim ") + std::to_string(pp.shape.size()) + ", need " +
           std::to_string(ndim) + "-D " + layout);
    if (pp.p->cin != in_channels)
      fail("prepared weights are for in_channels=" + std::to_string(pp.p->cin) + ", not " + std::to_string(in_channels));
    r.prepared = pp.p.get();
    r.shape = pp.shape;
    return r;
  }
  AnyArray a;
  if (!nb::try_cast<AnyArray>(w, a)) fail("w_packed must be a NumPy uint64 array or PreparedWeights");
  check_array<uint64_t>("w_packed", a, "uint64");
  check_ndim("w_packed", a, ndim, layout);
  r.ptr = static_cast<const uint64_t*>(a.data());
  for (size_t i = 0; i < ndim; ++i) r.shape.push_back(static_cast<int64_t>(a.shape(i)));
  return r;
}

// Optional pruning mask: uint64, C-contiguous, exactly the packed weight shape. The canonical
// form (padding bits 0, no weight bit under a pruned mask bit) is checked by the engine.
const uint64_t* mask_arg(const std::optional<AnyArray>& m, const WeightsArg& w) {
  if (!m) return nullptr;
  if (w.prepared)
    fail("weight_mask cannot be combined with prepared weights (pass it to prepare_weights instead)");
  check_array<uint64_t>("weight_mask", *m, "uint64");
  bool same = m->ndim() == w.shape.size();
  for (size_t i = 0; same && i < w.shape.size(); ++i) same = static_cast<int64_t>(m->shape(i)) == w.shape[i];
  if (!same) {
    std::string want = "(";
    for (size_t i = 0; i < w.shape.size(); ++i) want += (i ? ", " : "") + std::to_string(w.shape[i]);
    fail("weight_mask must have the packed weight shape " + want + (w.shape.size() == 1 ? ",)" : ")") + ", got " +
         shape_str(*m));
  }
  return static_cast<const uint64_t*>(m->data());
}

nb::object py_bconv2d(const AnyArray& x, const nb::object& w_obj, int64_t in_channels, int64_t stride,
                      const std::variant<int64_t, std::string>& padding, const std::string& output,
                      const std::optional<AnyArray>& threshold, const std::optional<AnyArray>& direction,
                      const std::optional<AnyArray>& multiplier, const std::optional<AnyArray>& bias,
                      const std::optional<int>& shift, const std::optional<AnyArray>& scale,
                      const std::optional<std::string>& isa_name, const std::optional<int>& threads,
                      const nb::object& out, const std::optional<AnyArray>& weight_mask,
                      const std::optional<int64_t>& padding_end, int pad_value) {
  check_array<uint64_t>("x_packed", x, "uint64");
  check_ndim("x_packed", x, 4, "(N, H, W, W64)");
  if (in_channels < 1) fail("in_channels must be >= 1, got " + std::to_string(in_channels));
  const WeightsArg w = weights_arg(w_obj, 4, "(Cout, KH, KW, W64)", in_channels);
  const int64_t w64 = (in_channels + 63) / 64;
  check_words("x_packed", static_cast<int64_t>(x.shape(3)), "pixel", "in_channels", in_channels);
  check_words("w_packed", w.shape[3], "tap", "in_channels", in_channels);
  onebit::BConvArgs a;
  a.s.n = x.shape(0); a.s.h = x.shape(1); a.s.w = x.shape(2);
  a.s.cin = in_channels; a.s.cout = w.shape[0]; a.s.kh = w.shape[1]; a.s.kw = w.shape[2];
  a.s.stride = stride;
  a.s.pad = parse_padding(padding, a.s.kh, a.s.kw);
  a.s.pad_end = padding_end.value_or(a.s.pad);
  a.s.pad_value = pad_value;
  if (a.s.n < 1 || a.s.h < 1 || a.s.w < 1) fail("x_packed must have N, H, W >= 1, got shape " + shape_str(x));
  if (a.s.cout < 1 || a.s.kh < 1 || a.s.kw < 1) fail("w_packed must have Cout, KH, KW >= 1");
  if (stride < 1) fail("stride must be >= 1, got " + std::to_string(stride));
  if (a.s.pad < 0 || a.s.pad_end < 0)
    fail("padding must be >= 0, got " + std::to_string(a.s.pad) + " (padding_end " + std::to_string(a.s.pad_end) + ")");
  if (pad_value != 0 && pad_value != 1) fail("pad_value must be 0 or 1, got " + std::to_string(pad_value));
  a.x = static_cast<const uint64_t*>(x.data());
  a.w = w.ptr;
  a.prepared = w.prepared;
  a.weight_mask = mask_arg(weight_mask, w);
  check_padding_bits("x_packed", a.x, a.s.n * a.s.h * a.s.w, w64, in_channels);
  if (a.w) check_padding_bits("w_packed", a.w, a.s.cout * a.s.kh * a.s.kw, w64, in_channels);
  std::vector<int8_t> dir;
  a.stage = make_stage(StageArgs{output, threshold, direction, multiplier, bias, scale, shift}, a.s.cout, dir);
  const onebit::Isa isa = pick_isa(isa_name);
  const int nthreads = pick_threads(threads);
  if (a.s.h + a.s.pad + a.s.pad_end < a.s.kh || a.s.w + a.s.pad + a.s.pad_end < a.s.kw)
    fail("kernel " + std::to_string(a.s.kh) + "x" + std::to_string(a.s.kw) + " is larger than the padded input");
  auto [obj, ptr] = stage_result(a.stage, out, {size_t(a.s.n), size_t(a.s.out_h()), size_t(a.s.out_w())}, a.s.cout);
  a.out = ptr;
  nb::gil_scoped_release release;
  onebit::bconv2d(a, isa, nthreads);
  return obj;
}

nb::object py_bitplanes(const AnyArray& u, const AnyArray& planes, const std::optional<std::string>& isa_name,
                        const std::optional<int>& threads) {
  check_array<uint8_t>("u", u, "uint8");
  check_array<int32_t>("planes", planes, "int32");
  if (u.ndim() < 1) fail("u must have at least one axis (channels last)");
  check_ndim("planes", planes, 1, "(P,)");
  const int64_t c = static_cast<int64_t>(u.shape(u.ndim() - 1)), np_ = static_cast<int64_t>(planes.shape(0));
  if (c < 1 || np_ < 1) fail("bitplanes needs at least one channel and one plane");
  int64_t pixels = 1;
  std::vector<size_t> shape;
  for (size_t i = 0; i + 1 < u.ndim(); ++i) {
    pixels *= static_cast<int64_t>(u.shape(i));
    shape.push_back(u.shape(i));
  }
  shape.push_back(static_cast<size_t>((np_ + 63) / 64));
  const onebit::Isa isa = pick_isa(isa_name);
  const int nthreads = pick_threads(threads);
  auto [obj, ptr] = result_array<uint64_t>(nb::none(), shape, "uint64");
  nb::gil_scoped_release release;
  onebit::bitplanes(static_cast<const uint8_t*>(u.data()), pixels, c, static_cast<const int32_t*>(planes.data()), np_,
                    static_cast<uint64_t*>(ptr), isa, nthreads);
  return obj;
}

nb::object py_bconv2d_planes(const AnyArray& x, const AnyArray& w, int64_t in_channels, int64_t stride,
                             const std::variant<int64_t, std::string>& padding, const std::optional<int64_t>& kernel,
                             const std::string& output, const std::optional<AnyArray>& threshold,
                             const std::optional<AnyArray>& direction, const std::optional<AnyArray>& multiplier,
                             const std::optional<AnyArray>& bias, const std::optional<int>& shift,
                             const std::optional<AnyArray>& scale, const std::optional<std::string>& isa_name,
                             const std::optional<int>& threads) {
  check_array<uint64_t>("x_packed", x, "uint64");
  check_ndim("x_packed", x, 4, "(N, H, W, W64)");
  check_array<uint64_t>("w_planes", w, "uint64");
  const bool window = w.ndim() == 3;  // (M, Cout, ceil(KH*KW*Cin/64)); else (M, Cout, KH, KW, W64)
  if (window && !kernel) fail("w_planes in the window layout (M, Cout, WW) needs kernel=K");
  if (!window) check_ndim("w_planes", w, 5, "(M, Cout, KH, KW, W64) or (M, Cout, ceil(KH*KW*Cin/64))");
  if (in_channels < 1) fail("in_channels must be >= 1, got " + std::to_string(in_channels));
  check_words("x_packed", static_cast<int64_t>(x.shape(3)), "pixel", "in_channels", in_channels);
  const int bits = static_cast<int>(w.shape(0));
  if (bits < 1 || bits > 8) fail("w_planes must hold 1 to 8 weight planes, got " + std::to_string(bits));
  onebit::BConvArgs a;
  a.s.n = x.shape(0); a.s.h = x.shape(1); a.s.w = x.shape(2);
  a.s.cin = in_channels; a.s.cout = w.shape(1);
  a.s.kh = window ? *kernel : static_cast<int64_t>(w.shape(2));
  a.s.kw = window ? *kernel : static_cast<int64_t>(w.shape(3));
  if (a.s.cout < 1 || a.s.kh < 1 || a.s.kw < 1) fail("w_planes must have Cout, KH, KW >= 1");
  if (window)
    check_words("w_planes", static_cast<int64_t>(w.shape(2)), "window", "kernel*kernel*in_channels",
                a.s.kh * a.s.kw * in_channels);
  else
    check_words("w_planes", static_cast<int64_t>(w.shape(4)), "tap", "in_channels", in_channels);
  a.s.stride = stride;
  a.s.pad = parse_padding(padding, a.s.kh, a.s.kw);
  a.s.pad_end = a.s.pad;
  if (a.s.n < 1 || a.s.h < 1 || a.s.w < 1) fail("x_packed must have N, H, W >= 1, got shape " + shape_str(x));
  if (stride < 1) fail("stride must be >= 1, got " + std::to_string(stride));
  if (a.s.pad < 0) fail("padding must be >= 0, got " + std::to_string(a.s.pad));
  if (a.s.h + 2 * a.s.pad < a.s.kh || a.s.w + 2 * a.s.pad < a.s.kw)
    fail("kernel " + std::to_string(a.s.kh) + "x" + std::to_string(a.s.kw) + " is larger than the padded input");
  a.x = static_cast<const uint64_t*>(x.data());
  const uint64_t* wp = static_cast<const uint64_t*>(w.data());
  check_padding_bits("x_packed", a.x, a.s.n * a.s.h * a.s.w, (in_channels + 63) / 64, in_channels);
  if (window)
    check_padding_bits("w_planes", wp, bits * a.s.cout, (a.s.k_bits() + 63) / 64, a.s.k_bits());
  else
    check_padding_bits("w_planes", wp, bits * a.s.cout * a.s.kh * a.s.kw, (in_channels + 63) / 64, in_channels);
  std::vector<int8_t> dir;
  a.stage = make_stage(StageArgs{output, threshold, direction, multiplier, bias, scale, shift}, a.s.cout, dir);
  const onebit::Isa isa = pick_isa(isa_name);
  const int nthreads = pick_threads(threads);
  auto [obj, ptr] = stage_result(a.stage, nb::none(), {size_t(a.s.n), size_t(a.s.out_h()), size_t(a.s.out_w())}, a.s.cout);
  a.out = ptr;
  nb::gil_scoped_release release;
  const auto prepared = onebit::prepare_planes_weights(wp, window, bits, a.s.cout, a.s.kh, a.s.kw, in_channels);
  onebit::bconv2d_planes(a, *prepared, isa, nthreads);
  return obj;
}

nb::object py_bdense(const AnyArray& x, const nb::object& w_obj, int64_t in_features, const std::string& output,
                     const std::optional<AnyArray>& threshold, const std::optional<AnyArray>& direction,
                     const std::optional<AnyArray>& multiplier, const std::optional<AnyArray>& bias,
                     const std::optional<int>& shift, const std::optional<AnyArray>& scale,
                     const std::optional<std::string>& isa_name, const std::optional<int>& threads,
                     const nb::object& out, const std::optional<AnyArray>& weight_mask) {
  check_array<uint64_t>("x_packed", x, "uint64");
  check_ndim("x_packed", x, 2, "(N, W64)");
  if (in_features < 1) fail("in_features must be >= 1, got " + std::to_string(in_features));
  const WeightsArg w = weights_arg(w_obj, 2, "(Cout, W64)", in_features);
  const int64_t w64 = (in_features + 63) / 64;
  check_words("x_packed", static_cast<int64_t>(x.shape(1)), "row", "in_features", in_features);
  check_words("w_packed", w.shape[1], "row", "in_features", in_features);
  const int64_t n = x.shape(0), cout = w.shape[0];
  if (n < 1) fail("x_packed must have N >= 1, got shape " + shape_str(x));
  if (cout < 1) fail("w_packed must have Cout >= 1");
  const auto* xp = static_cast<const uint64_t*>(x.data());
  const uint64_t* wp = w.ptr;
  const uint64_t* mp = mask_arg(weight_mask, w);
  check_padding_bits("x_packed", xp, n, w64, in_features);
  if (wp) check_padding_bits("w_packed", wp, cout, w64, in_features);
  std::vector<int8_t> dir;
  const onebit::OutputStage st = make_stage(StageArgs{output, threshold, direction, multiplier, bias, scale, shift}, cout, dir);
  const onebit::Isa isa = pick_isa(isa_name);
  const int nthreads = pick_threads(threads);
  auto [obj, ptr] = stage_result(st, out, {size_t(n)}, cout);
  nb::gil_scoped_release release;
  onebit::bdense(xp, wp, n, in_features, cout, st, ptr, isa, nthreads, w.prepared, mp);
  return obj;
}

PyPrepared py_prepare(const AnyArray& w, int64_t in_channels, const std::optional<std::string>& isa_name,
                      const std::optional<int>& threads, const std::optional<AnyArray>& weight_mask) {
  check_array<uint64_t>("w_packed", w, "uint64");
  if (w.ndim() != 4 && w.ndim() != 2)
    fail("w_packed must be 4-D (Cout, KH, KW, W64) or 2-D (Cout, W64), got shape " + shape_str(w));
  if (in_channels < 1) fail("in_channels must be >= 1, got " + std::to_string(in_channels));
  const int64_t w64 = (in_channels + 63) / 64;
  check_words("w_packed", static_cast<int64_t>(w.shape(w.ndim() - 1)), "tap", "in_channels", in_channels);
  const int64_t cout = w.shape(0), kh = w.ndim() == 4 ? w.shape(1) : 1, kw = w.ndim() == 4 ? w.shape(2) : 1;
  if (cout < 1 || kh < 1 || kw < 1) fail("w_packed must have Cout, KH, KW >= 1, got shape " + shape_str(w));
  const auto* wp = static_cast<const uint64_t*>(w.data());
  check_padding_bits("w_packed", wp, cout * kh * kw, w64, in_channels);
  const onebit::Isa isa = pick_isa(isa_name);
  const int nthreads = pick_threads(threads);
  PyPrepared r;
  for (size_t i = 0; i < w.ndim(); ++i) r.shape.push_back(static_cast<int64_t>(w.shape(i)));
  WeightsArg wa;
  wa.shape = r.shape;
  const uint64_t* mp = mask_arg(weight_mask, wa);
  nb::gil_scoped_release release;
  r.p = onebit::prepare_bconv_weights(wp, cout, kh, kw, in_channels, isa, nthreads, mp);
  return r;
}

}  // namespace

void bind_kernels(nb::module_& m) {
  nb::class_<PyPrepared>(m, "PreparedWeights",
                         "Packed binary weights re-laid out once for one ISA's kernel (prepare_weights).")
      .def_prop_ro("isa", [](const PyPrepared& p) { return std::string(onebit::isa_name(p.p->isa)); })
      .def_prop_ro("in_channels", [](const PyPrepared& p) { return p.p->cin; })
      .def_prop_ro("masked", [](const PyPrepared& p) { return p.p->masked; },
                   "True when prepared with a weight_mask (pruned layer).")
      .def_prop_ro("shape", [](const PyPrepared& p) {
        nb::list l;
        for (int64_t d : p.shape) l.append(d);
        return nb::tuple(l);
      })
      .def("__repr__", [](const PyPrepared& p) {
        std::string s = "PreparedWeights(isa='" + std::string(onebit::isa_name(p.p->isa)) + "', shape=(";
        for (size_t i = 0; i < p.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(p.shape[i]);
        return s + "), in_channels=" + std::to_string(p.p->cin) + (p.p->masked ? ", masked=True" : "") + ")";
      });
  m.def("prepare_weights", &py_prepare, "w_packed"_a, nb::kw_only(), "in_channels"_a, "isa"_a = nb::none(),
        "threads"_a = nb::none(), "weight_mask"_a = nb::none(),
        "Re-lay out packed conv (Cout,KH,KW,W64) or dense (Cout,W64) weights once for an ISA's kernel "
        "(with weight_mask: a pruned layer, the mask travels with the result).");
  m.def("bitpack", &py_bitpack, "x"_a, nb::kw_only(), "isa"_a = nb::none(), "threads"_a = nb::none(),
        "out"_a = nb::none(),
        "Pack sign bits of a float32/int8 array along its last axis: (..., C) -> (..., ceil(C/64)) uint64.");
  m.def("bconv2d", &py_bconv2d, "x_packed"_a, "w_packed"_a, nb::kw_only(), "in_channels"_a, "stride"_a = 1,
        "padding"_a = 0, "output"_a = "int32", "threshold"_a = nb::none(), "direction"_a = nb::none(),
        "multiplier"_a = nb::none(), "bias"_a = nb::none(), "shift"_a = nb::none(), "scale"_a = nb::none(),
        "isa"_a = nb::none(), "threads"_a = nb::none(), "out"_a = nb::none(), "weight_mask"_a = nb::none(),
        "padding_end"_a = nb::none(), "pad_value"_a = 0,
        "Binary direct convolution, packed NHWC in, fused output stage out (docs/kernels.md).");
  m.def("bdense", &py_bdense, "x_packed"_a, "w_packed"_a, nb::kw_only(), "in_features"_a, "output"_a = "int32",
        "threshold"_a = nb::none(), "direction"_a = nb::none(), "multiplier"_a = nb::none(),
        "bias"_a = nb::none(), "shift"_a = nb::none(), "scale"_a = nb::none(), "isa"_a = nb::none(),
        "threads"_a = nb::none(), "out"_a = nb::none(), "weight_mask"_a = nb::none(),
        "Binary fully connected layer, packed (N, W64) x (Cout, W64), fused output stage out.");
  m.def("bitplanes", &py_bitplanes, "u"_a, "planes"_a, nb::kw_only(), "isa"_a = nb::none(), "threads"_a = nb::none(),
        "CBNN bit planes of uint8 pixels (..., C) -> packed (..., ceil(P/64)) uint64; planes: int32 ids c*8+b.");
  m.def("bconv2d_planes", &py_bconv2d_planes, "x_packed"_a, "w_planes"_a, nb::kw_only(), "in_channels"_a,
        "stride"_a = 1, "padding"_a = 0, "kernel"_a = nb::none(), "output"_a = "int32", "threshold"_a = nb::none(),
        "direction"_a = nb::none(), "multiplier"_a = nb::none(), "bias"_a = nb::none(), "shift"_a = nb::none(),
        "scale"_a = nb::none(), "isa"_a = nb::none(), "threads"_a = nb::none(),
        "Binary conv with multi-bit weights: M +-1 weight planes, plane j worth 2^j, (M, Cout, KH, KW, W64) or "
        "window layout (M, Cout, ceil(KH*KW*Cin/64)) with kernel=K.");
  m.def("accumulator_bits", [](int64_t k) {
    if (k < 1) fail("K must be >= 1");
    return onebit::accumulator_bits(k);
  }, "k_bits"_a, "Accumulator width (16 or 32) the engine uses for a binary dot product over K bits.");
  m.def("popcount_peak", [](const std::optional<std::string>& isa, double seconds, const std::string& method) {
    const onebit::Isa i = pick_isa(isa);
    if (!(seconds > 0 && seconds <= 60)) fail("seconds must be in (0, 60]");
    nb::gil_scoped_release release;
    return onebit::popcount_peak(i, seconds, method);
  }, "isa"_a = nb::none(), "seconds"_a = 0.2, "method"_a = "",
  "Peak XOR+popcount+add rate (bit-MACs/s) of one thread on L1-resident data.");
}
