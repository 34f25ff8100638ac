#include "onebit/runtime/fusion.h"

#include <cstdlib>
#include <cstring>

namespace onebit::rt {

namespace {
bool int8_conv(const Op& op) {
  return (op.type == OpType::bconv2d || op.type == OpType::conv2d_u8 || op.type == OpType::conv2d_i8) &&
         op.stage == Stage::int8;
}
}  // namespace

bool fusion_default() {
  const char* env = std::getenv("ONEBIT_FUSION");
  return env && std::strcmp(env, "1") == 0;
}

Fusion plan_fusion(const Model& m, bool enabled) {
  const size_t nops = m.ops.size(), nv = m.values.size();
  Fusion f;
  f.add_into.assign(nops, -1);
  f.pack_into.assign(nops, -1);
  f.host.assign(nops, -1);
  if (!enabled || nops == 0) return f;
  std::vector<int> producer(nv, -1), readers(nv, 0);
  for (size_t i = 0; i < nops; ++i) {
    producer[static_cast<size_t>(m.ops[i].output)] = static_cast<int>(i);
    for (int v : m.ops[i].inputs) ++readers[static_cast<size_t>(v)];
  }
  ++readers[static_cast<size_t>(m.ops.back().output)];  // the graph output is read by the caller
  std::vector<int> writer(nv, -1);  // the conv that stores an int8 value (after add fusion)
  for (size_t i = 0; i < nops; ++i) {
    const Op& op = m.ops[i];
    if (int8_conv(op)) writer[static_cast<size_t>(op.output)] = static_cast<int>(i);
    if (op.type == OpType::add && m.values[static_cast<size_t>(op.output)].kind == Kind::int8 &&
        op.inputs.size() == 2 && op.inputs[0] != op.inputs[1]) {
      int best = -1;
      for (int k = 0; k < 2; ++k) {
        const int v = op.inputs[static_cast<size_t>(k)], u = op.inputs[static_cast<size_t>(1 - k)];
        const int p = producer[static_cast<size_t>(v)];
        if (p < 0 || !int8_conv(m.ops[static_cast<size_t>(p)]) || f.add_into[static_cast<size_t>(p)] >= 0 ||
            readers[static_cast<size_t>(v)] != 1 || producer[static_cast<size_t>(u)] >= p)
          continue;
        if (best < 0 || p > best) best = p;
      }
      if (best >= 0) {
        f.add_into[static_cast<size_t>(best)] = static_cast<int>(i);
        f.host[i] = best;
        writer[static_cast<size_t>(op.output)] = best;
      }
    }
    if (op.type == OpType::bitpack && m.values[static_cast<size_t>(op.inputs[0])].kind == Kind::int8) {
      const int w = writer[static_cast<size_t>(op.inputs[0])];
      if (w >= 0 && f.pack_into[static_cast<size_t>(w)] < 0) {
        f.pack_into[static_cast<size_t>(w)] = static_cast<int>(i);
        f.host[i] = w;
      }
    }
  }
  return f;
}

bool Fusion::any() const {
  for (int h : host)
    if (h >= 0) return true;
  return false;
}

int Fusion::int8_output(const Model& m, size_t i) const {
  const int a = add_into[i];
  return a >= 0 ? m.ops[static_cast<size_t>(a)].output : m.ops[i].output;
}

int Fusion::residual(const Model& m, size_t i) const {
  const int a = add_into[i];
  if (a < 0) return -1;
  const Op& add = m.ops[static_cast<size_t>(a)];
  return add.inputs[0] == m.ops[i].output ? add.inputs[1] : add.inputs[0];
}

std::vector<int> Fusion::writes(const Model& m, size_t i) const {
  if (host[i] >= 0) return {};
  std::vector<int> w{int8_output(m, i)};
  if (pack_into[i] >= 0) w.push_back(m.ops[static_cast<size_t>(pack_into[i])].output);
  return w;
}

std::vector<int> Fusion::reads(const Model& m, size_t i) const {
  if (host[i] >= 0) return {};
  std::vector<int> r = m.ops[i].inputs;
  if (add_into[i] >= 0) r.push_back(residual(m, i));
  return r;
}

}  // namespace onebit::rt
