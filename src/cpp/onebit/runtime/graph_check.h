// The graph checks of the loader (internal): every op's attributes against its inputs, shape
// inference, declared values, names and liveness (onebit/runtime/graph.py: SPECS, infer; and
// format.py _graph). FormatError names the op and the problem.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "onebit/runtime/json_util.h"
#include "onebit/runtime/model.h"

namespace onebit::rt::detail {

// An op as the file states it (checked types, not yet checked against the graph).
struct OpJson {
  std::string name, type;
  OpType t{};
  std::vector<std::string> inputs;
  std::string output;
  json attrs;
  std::map<std::string, std::string> tensors;  // role -> tensor name
};

using Spec = std::map<std::string, std::pair<DType, std::vector<int64_t>>>;

// Parses graph op #i (graph.py op_from_json).
OpJson op_from_json(size_t i, const json& d);
// Checks the graph document against the metadata's input (in m) and `output_doc`; fills
// m.values (index 0: the input), m.ops (tensor roles still unresolved), output_name and
// num_classes, and the ops as stated in `ops_json`.
void check_graph(const json& g, const json& output_doc, Model& m, std::vector<OpJson>& ops_json);
// The tensors op i needs: role -> (dtype, shape), as check_graph derived them.
Spec op_tensor_spec(const Model& m, const OpJson& oj, size_t i);
// FormatError "op 'name' (type): msg".
[[noreturn]] void op_fail(const OpJson& oj, const std::string& msg);

}  // namespace onebit::rt::detail
