// Binding of the C++ runtime (src/cpp/onebit/runtime): the loader and the graph executor behind
// onebit.runtime.Session. Converts arguments and results only; the GIL is released while a file
// is validated and while a model runs. onebit::rt::FormatError becomes onebit.FormatError and an
// unreadable file FileNotFoundError.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <memory>
#include <type_traits>
#include <string>
#include <vector>

#include "common.h"
#include "onebit/runtime/executor.h"
#include "onebit/runtime/loader.h"

namespace nb = nanobind;

namespace {

using namespace onebit::bind;  // the shared argument checks (common.h)
namespace rt = onebit::rt;

template <class T>
nb::object new_array(const std::vector<size_t>& shape, T** data) {
  size_t n = 1;
  for (size_t d : shape) n *= d;
  T* p = new T[n ? n : 1];
  nb::capsule owner(p, [](void* q) noexcept { delete[] static_cast<T*>(q); });
  *data = p;
  return nb::ndarray<nb::numpy, T>(p, shape.size(), shape.data(), owner).cast();
}

struct PyRuntime {
  std::unique_ptr<rt::Executor> exe;

  const rt::Model& m() const { return exe->model(); }

  // (n) of a uint8 (n, H, W, C) C-contiguous batch, else ValueError.
  int64_t batch(const In& x) const {
    auto s = check<uint8_t>(x, "input", 4);
    const rt::Model& md = m();
    if (s[1] != md.in_h || s[2] != md.in_w || s[3] != md.in_c)
      fail("input must have shape (N, " + std::to_string(md.in_h) + ", " + std::to_string(md.in_w) + ", " +
           std::to_string(md.in_c) + ") NHWC, got " + onebit::bind::shape_str(s));
    if (s[0] < 1) fail("input batch is empty");
    return s[0];
  }

  nb::object run(const In& x, std::vector<double>* op_ms) {
    const int64_t n = batch(x);
    float* out = nullptr;
    nb::object arr = new_array<float>({size_t(n), size_t(m().num_classes)}, &out);
    const auto* in = static_cast<const uint8_t*>(x.data());
    nb::gil_scoped_release release;
    exe->run(in, n, out, op_ms);
    return arr;
  }

  nb::dict run_values(const In& x) {
    const int64_t n = batch(x);
    std::vector<std::vector<uint8_t>> vals;
    {
      const auto* in = static_cast<const uint8_t*>(x.data());
      nb::gil_scoped_release release;
      vals = exe->run_values(in, n);
    }
    nb::dict d;
    const rt::Model& md = m();
    for (size_t v = 0; v < md.values.size(); ++v) {
      const rt::Value& val = md.values[v];
      std::vector<size_t> shape{size_t(n)};
      for (int64_t s : val.shape) shape.push_back(size_t(s));
      nb::object a;
      auto fill = [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        T* p = nullptr;
        a = new_array<T>(shape, &p);
        std::memcpy(p, vals[v].data(), vals[v].size());
      };
      switch (val.kind) {
        case rt::Kind::bits:
          shape.back() = (shape.back() + 63) / 64;
          fill(static_cast<uint64_t*>(nullptr));
          break;
        case rt::Kind::int8: fill(static_cast<int8_t*>(nullptr)); break;
        case rt::Kind::f32: fill(static_cast<float*>(nullptr)); break;
        default: fill(static_cast<uint8_t*>(nullptr)); break;
      }
      d[val.name.c_str()] = a;
    }
    return d;
  }
};

// Raises `type` with a message that may quote bytes of a malformed file (undecodable ones replaced).
void set_error(PyObject* type, const char* msg) {
  PyObject* text = PyUnicode_DecodeUTF8(msg, static_cast<Py_ssize_t>(std::strlen(msg)), "replace");
  if (!text) return;
  PyErr_SetObject(type, text);
  Py_DECREF(text);
}

PyRuntime open_runtime(const nb::object& src, const std::optional<std::string>& isa,
                       const std::optional<int>& threads) {
  const onebit::Isa is = pick_isa(isa);
  const int th = pick_threads(threads);
  // one ISA per Runtime: the raw weights are released once prepared
  std::shared_ptr<rt::Model> model;
  PyRuntime r;
  if (nb::isinstance<nb::bytes>(src)) {
    nb::bytes b = nb::cast<nb::bytes>(src);
    const auto* p = static_cast<const uint8_t*>(b.data());
    const size_t size = b.size();
    nb::gil_scoped_release release;
    model = rt::load_model(p, size);
    r.exe = std::make_unique<rt::Executor>(model, is, th, rt::RawWeights::release);
  } else {
    const std::string path = nb::cast<std::string>(nb::str(src));
    nb::gil_scoped_release release;
    model = rt::load_model_file(path, true);
    r.exe = std::make_unique<rt::Executor>(model, is, th, rt::RawWeights::release, path);
  }
  return r;
}

}  // namespace

void bind_runtime(nb::module_& m) {
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const rt::FormatError& e) {
      nb::object cls = nb::module_::import_("onebit.errors").attr("FormatError");
      set_error(cls.ptr(), e.what());
    } catch (const rt::IoError& e) {
      set_error(PyExc_FileNotFoundError, e.what());
    }
  });
  nb::class_<PyRuntime>(m, "Runtime",
                        "A validated model (C++ loader) bound to an ISA and a thread count (C++ executor).")
      .def_static("open", &open_runtime, nb::arg("source"), nb::kw_only(), nb::arg("isa") = nb::none(),
                  nb::arg("threads") = nb::none(),
                  "Validate a model file (bytes, or a path) and prepare it for an ISA (onebit.FormatError "
                  "on a malformed file).")
      .def_prop_ro("isa", [](const PyRuntime& r) { return std::string(onebit::isa_name(r.exe->isa())); })
      .def_prop_ro("threads", [](const PyRuntime& r) { return r.exe->threads(); })
      .def_prop_ro("input_shape", [](const PyRuntime& r) {
        return nb::make_tuple(r.m().in_h, r.m().in_w, r.m().in_c);
      })
      .def_prop_ro("mean", [](const PyRuntime& r) { return r.m().mean; })
      .def_prop_ro("std", [](const PyRuntime& r) { return r.m().std; })
      .def_prop_ro("num_classes", [](const PyRuntime& r) { return r.m().num_classes; })
      .def_prop_ro("class_names", [](const PyRuntime& r) { return r.m().class_names; })
      .def_prop_ro("input_name", [](const PyRuntime& r) { return r.m().input_name; })
      .def_prop_ro("output_name", [](const PyRuntime& r) { return r.m().output_name; })
      .def_prop_ro("op_names", [](const PyRuntime& r) {
        std::vector<std::string> v;
        for (const auto& op : r.m().ops) v.push_back(op.name);
        return v;
      })
      .def_prop_ro("ops", [](const PyRuntime& r) {
        nb::list l;
        for (const auto& op : r.m().ops)
          l.append(nb::make_tuple(op.name, std::string(rt::op_type_name(op.type)),
                                  std::string(rt::kind_name(r.m().values[size_t(op.output)].kind))));
        return l;
      }, "[(op name, op type, output kind)] in execution order.")
      .def_prop_ro("fused_into", [](const PyRuntime& r) { return r.exe->fused_into(); },
                   "Per op: the index of the op whose output stage runs it (fusion), or -1.")
      .def("run", [](PyRuntime& r, const In& x) { return r.run(x, nullptr); }, nb::arg("x"),
           "Logits (N, classes) float32 of a uint8 (N, H, W, C) batch; the GIL is released.")
      .def("run_timed", [](PyRuntime& r, const In& x) {
        std::vector<double> ms;
        nb::object out = r.run(x, &ms);
        return nb::make_tuple(out, ms);
      }, nb::arg("x"), "(logits, [milliseconds of each op]) of one run, timed in C++.")
      .def("run_values", &PyRuntime::run_values, nb::arg("x"),
           "Every value of one run, {value name: array}, from a plan without buffer sharing.")
      .def("activation_bytes", [](PyRuntime& r, int64_t n) {
        if (n < 1) fail("batch size must be >= 1");
        return r.exe->activation_bytes(n);
      }, nb::arg("n") = 1, "Bytes of the activation buffers planned for batch n.");
  m.def("validate_model", [](nb::bytes data) {
    const auto* p = static_cast<const uint8_t*>(data.data());
    const size_t size = data.size();
    nb::gil_scoped_release release;
    rt::load_model(p, size);
  }, nb::arg("data"), "Validate the bytes of a model file with the C++ loader (onebit.FormatError if malformed).");
}
