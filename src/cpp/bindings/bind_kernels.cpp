// Placeholder binder replaced by the engine kernels' bindings (issue 5).
#include <nanobind/nanobind.h>
namespace nb = nanobind;
void bind_kernels(nb::module_&) {}
