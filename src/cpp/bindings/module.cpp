// nanobind module entry. Each concern binds itself from its own file (bind_*.cpp);
// bindings convert arrays and check shapes only, the logic lives in src/cpp/onebit.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "onebit/isa.h"
#include "onebit/threadpool.h"

namespace nb = nanobind;

// Defined in the other bind_*.cpp files of this folder.
#define ONEBIT_BINDERS(X) X(kernels) X(network) X(runtime)
#define ONEBIT_DECLARE(name) void bind_##name(nb::module_& m);
ONEBIT_BINDERS(ONEBIT_DECLARE)

NB_MODULE(_engine, m) {
  m.doc() = "onebit C++ engine: bit-packed BNN kernels (no Python or torch inside the kernels)";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("supported_isas", [] {
    std::vector<std::string> out;
    for (auto isa : onebit::supported_isas()) out.emplace_back(onebit::isa_name(isa));
    return out;
  }, "ISAs this CPU and build can run, from slowest to fastest.");
  m.def("cpu_features", &onebit::cpu_features,
        "Capabilities kernels use within an ISA: 'neon-dotprod' (Armv8.2 dot product) where present.");
  m.def("default_isa", [] { return std::string(onebit::isa_name(onebit::default_isa())); },
        "Best ISA, or the one ONEBIT_ISA forces (RuntimeError if the CPU lacks it).");
  m.def("active_isa", [] { return std::string(onebit::isa_name(onebit::active_isa())); });
  m.def("set_active_isa", [](const std::string& name) {
    onebit::set_active_isa(onebit::isa_from_name(name));
  }, nb::arg("isa"));
  m.def("default_num_threads", &onebit::default_num_threads);
#define ONEBIT_CALL(name) bind_##name(m);
  ONEBIT_BINDERS(ONEBIT_CALL)
}
