// Model, Value, Op helpers (model.h).
#include "onebit/runtime/model.h"

#include <limits>

namespace onebit::rt {

namespace {
// Product of non-negative sizes, saturating at INT64_MAX.
int64_t prod_capped(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t d : v)
    if (d == 0) return 0;
  for (int64_t d : v) {
    if (p > std::numeric_limits<int64_t>::max() / d) return std::numeric_limits<int64_t>::max();
    p *= d;
  }
  return p;
}
int64_t num_words(int64_t c) { return (c + 63) / 64; }
}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::u8: return "u8";
    case Kind::bits: return "bits";
    case Kind::int8: return "int8";
    default: return "f32";
  }
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::u8: return "U8";
    case DType::i8: return "I8";
    case DType::i32: return "I32";
    case DType::u64: return "U64";
    default: return "F32";
  }
}

int64_t dtype_size(DType d) {
  switch (d) {
    case DType::u8:
    case DType::i8: return 1;
    case DType::u64: return 8;
    default: return 4;
  }
}


int64_t Value::elements() const { return prod_capped(shape); }

int64_t Value::sample_bytes() const {
  if (kind == Kind::bits) {
    std::vector<int64_t> s = shape;
    s.back() = num_words(s.back());
    return prod_capped(s) * 8;
  }
  return elements() * (kind == Kind::f32 ? 4 : 1);
}

const Tensor* Op::tensor(const std::vector<Tensor>& all, const char* role) const {
  auto it = tensors.find(role);
  if (it == tensors.end() || it->second < 0) return nullptr;
  return &all[static_cast<size_t>(it->second)];
}

bool prepared_role(OpType t, const std::string& role) {
  if (t == OpType::bconv2d || t == OpType::bdense)
    return role == "weight" || role == "weight_mask" || role == "weight_word_mask" || role == "weight_kept";
  return (t == OpType::conv2d_u8 || t == OpType::conv2d_i8) && role == "weight";
}

void release_prepared_weights(Model& m, Op& op) {
  bool any = false;
  for (const auto& [role, t] : op.tensors)
    if (prepared_role(op.type, role)) {
      m.tensors[static_cast<size_t>(t)].storage.reset();
      any = true;
    }
  if (!any) return;
  op.weight.reset();
  op.mask.reset();
  op.released = true;
}

int Model::value_index(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace onebit::rt
