// The graph executor: runs a validated Model (model.h) on the engine's kernels, with no Python
// in the loop.
//
// Built once per (model, ISA, threads): binary and int8 convolution weights are prepared for the
// ISA here, once, op by op, largest first. An op whose raw weights the model released
// (Op::released: load_model_file with release_prepared, or an earlier executor) has them read
// again from the model's file first (load_op_weights); with RawWeights::release each op's raw
// weights are released again as soon as its prepared form exists. So a model loaded with
// release_prepared and run with RawWeights::release holds one copy of the weights, and its peak
// while preparing is that copy plus the smallest prepared op's raw weights.
// Buffers are planned per batch size (plan.h: liveness-based reuse, flatten outputs are views of
// their input's buffer) and held by execution contexts; run() takes a free context (or makes
// one), so several threads may run one Executor at once: they share the model and the prepared
// weights, never a buffer. Results never depend on the ISA, the thread count or concurrency.
//
// Fusion (fusion.h): with `fuse`, int8 residual adds and bitpacks run inside the output stage of
// the conv before them; the results are the unfused graph's bit for bit. The default follows
// ONEBIT_FUSION (1: on; default off).
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "onebit/bconv.h"
#include "onebit/isa.h"
#include "onebit/runtime/fusion.h"
#include "onebit/runtime/model.h"
#include "onebit/runtime/plan.h"

namespace onebit::rt {

enum class RawWeights { keep, release };

class Executor {
 public:
  // FormatError for a graph the engine cannot run (e.g. a binary convolution with a different
  // stride or padding per axis); std::invalid_argument for threads < 1 or an ISA the CPU lacks;
  // `path`: the file the model was loaded from, read again for released weights (IoError when
  // it cannot be read or changed since; std::logic_error when weights were released and no path
  // is given).
  Executor(std::shared_ptr<Model> model, Isa isa, int threads, RawWeights raw = RawWeights::keep,
           const std::string& path = "", bool fuse = fusion_default());
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  const Model& model() const { return *model_; }
  const std::shared_ptr<const Model>& model_ptr() const { return model_; }
  Isa isa() const { return isa_; }
  // Whether run() executes a fused graph (some op runs inside another's output stage).
  bool fused() const { return fusion_.any(); }
  // Per op: the op whose output stage runs it, or -1 (run() reports 0 ms for a fused op).
  const std::vector<int>& fused_into() const { return fusion_.host; }
  int threads() const { return threads_.load(); }
  // Threads for later runs (>= 1; the prepared weights do not depend on it).
  void set_threads(int threads);

  // Logits (n, classes) float32 of n uint8 NHWC images (n, H, W, C). Thread-safe. With `op_ms`
  // (resized to the op count), each op's wall time in milliseconds is stored there.
  void run(const uint8_t* input, int64_t n, float* output, std::vector<double>* op_ms = nullptr);
  // Every value of one run (plan without sharing, unfused graph: every value is stored), indexed
  // like Model::values (index 0: the input); each is a copy of its batch buffer (bits: packed
  // uint64 words).
  std::vector<std::vector<uint8_t>> run_values(const uint8_t* input, int64_t n);
  // Bytes of the activation buffers planned for batch n (buffer sharing on).
  int64_t activation_bytes(int64_t n);

 private:
  struct Context;
  struct OpState;
  const Plan& plan(int64_t n, bool share);  // mu_ held
  std::unique_ptr<Context> acquire(int64_t n, bool share);
  void release(std::unique_ptr<Context> c);
  void execute(Context& c, const uint8_t* input, std::vector<double>* op_ms);

  std::shared_ptr<const Model> model_;
  Isa isa_;
  std::atomic<int> threads_;
  std::vector<OpState> state_;  // per op: prepared weights, fixed parameters
  Fusion fusion_;               // what run() fuses
  Fusion unfused_;              // nothing fused (run_values)
  std::mutex mu_;
  std::map<std::pair<int64_t, bool>, std::unique_ptr<Plan>> plans_;
  std::vector<std::unique_ptr<Context>> free_;
};

}  // namespace onebit::rt
