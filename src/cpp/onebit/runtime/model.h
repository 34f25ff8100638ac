// A validated .onebit model in memory (docs/format.md §7): metadata, values, ops in execution
// order, and owned tensor data. Built only by the loader (loader.h) and shared read-only by every
// executor and thread that runs it, with one exception: the weights an executor prepares for its
// ISA (prepared_role) may be released once their prepared form exists (Op::released), and read
// again from the file (load_op_weights, loader.h) when another ISA is prepared. No Python.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace onebit::rt {

// A model file (or its metadata) is malformed, truncated, of an unsupported version, or
// inconsistent with its graph. The message names the problem.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A model file could not be opened or read (the message names the path).
struct IoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class Kind : int { u8 = 0, bits = 1, int8 = 2, f32 = 3 };
const char* kind_name(Kind k);

// An activation: kind and per-sample shape (no batch axis); int8 values carry their scale.
struct Value {
  std::string name;
  Kind kind = Kind::f32;
  std::vector<int64_t> shape;
  bool has_scale = false;
  double scale = 0.0;
  int64_t elements() const;
  // Bytes of one sample's buffer (bits: packed uint64 words along the last axis).
  int64_t sample_bytes() const;
};

enum class DType : int { u8 = 0, i8 = 1, i32 = 2, u64 = 3, f32 = 4 };
const char* dtype_name(DType d);  // safetensors name: U8, I8, I32, U64, F32
int64_t dtype_size(DType d);

// Tensor data read out of the file: owned, 64-byte aligned, little-endian host order.
struct Tensor {
  std::string name;
  DType dtype = DType::u8;
  std::vector<int64_t> shape;
  int64_t nbytes = 0;
  std::shared_ptr<uint8_t> storage;  // null once released (Op::released)
  int64_t offset = 0;                // of its bytes in the file
  uint64_t hash = 0;                 // of its bytes (same bytes, same value, within one process)
  const void* data() const { return storage.get(); }
  template <class T> const T* as() const { return reinterpret_cast<const T*>(storage.get()); }
};

enum class OpType : int {
  conv2d_u8, conv2d_i8, conv1x1_f32, avgpool2d, global_avgpool, add, bitpack, dequantize,
  bconv2d, bdense, maxpool2d, flatten, dense_f32, clamp_f32, dwconv2d_i8, concat, conv2d_f32, dwconv2d_f32,
  bitplanes, bconv2d_planes, affine_f32, prelu_f32, sigmoid_f32, mul_channels_f32
};
const char* op_type_name(OpType t);

// True for the tensor roles an executor copies into an ISA's own layout and then no longer
// reads: the binary ops' packed weights and masks (weight, weight_mask, weight_word_mask,
// weight_kept), the int8 convolutions' weight.
bool prepared_role(OpType t, const std::string& role);

enum class Stage : int { none = 0, bits = 1, int8 = 2, f32 = 3 };

// One op with its attributes decoded (only those of its type are meaningful).
struct Op {
  std::string name;
  OpType type = OpType::flatten;
  std::vector<int> inputs;  // value indices
  int output = -1;          // value index
  // convolution / pooling geometry
  int64_t in_channels = 0, out_channels = 0;  // dense: in_features / out_features
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  int ph_end = 0, pw_end = 0;  // convolutions: padding after the input (bottom, right)
  int pad_value = 0;           // bconv2d: 0 true zero, 1 one-padding (docs/format.md §3)
  int64_t groups = 1;          // conv2d_f32: channel groups (in and out channels split alike)
  bool ceil_mode = false, count_include_pad = false;
  // fused output stage (docs/format.md §5)
  Stage stage = Stage::none;
  int shift = 0;  // int8 stage; add: its shift
  double out_scale = 0.0;
  // binary ops
  int64_t accumulator_bound = 0;
  int accumulator_bits = 0;
  int64_t kept_weights = -1;
  // bitplanes: plane ids c*8 + b; bconv2d_planes: weight planes M
  std::vector<int32_t> planes;
  int weight_bits = 0;
  bool window_layout = false;  // bconv2d_planes weight_layout "window" (else "taps")
  // int8 add
  int32_t ma = 0, mb = 0;
  // clamp
  double min = 0.0, max = 0.0;
  // role -> tensor index into Model::tensors
  std::map<std::string, int> tensors;
  // binary ops: the packed weights (and the full mask of a pruned op) in the engine's form: the
  // file's tensors, or expanded from weight_kept / weight_word_mask when it stores compact forms
  std::shared_ptr<const uint64_t> weight, mask;
  // Its prepared_role tensors (and weight / mask) were released: only an executor that prepared
  // them, or a copy read again from the file, holds them.
  bool released = false;

  const Tensor* tensor(const std::vector<Tensor>& all, const char* role) const;
};

struct Model {
  int format_version = 0;
  std::string producer_json;   // the producer document, as stored
  std::string input_name, output_name;
  int64_t in_h = 0, in_w = 0, in_c = 0;
  std::vector<double> mean, std;
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  // from output.class_names when present
  std::vector<Value> values;   // index 0: the graph input
  std::vector<Op> ops;
  std::vector<Tensor> tensors;
  int64_t file_bytes = 0;
  int value_index(const std::string& name) const;  // -1 when absent
};

// Releases op's prepared_role tensors, Op::weight and Op::mask (sets Op::released).
void release_prepared_weights(Model& m, Op& op);

}  // namespace onebit::rt
