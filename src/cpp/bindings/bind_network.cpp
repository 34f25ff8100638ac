// Placeholder binder replaced by the network kernels' bindings (pooling, int8 conv, add, dense).
#include <nanobind/nanobind.h>
namespace nb = nanobind;
void bind_network(nb::module_&) {}
