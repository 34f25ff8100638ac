// The .onebit loader: checks everything before trusting anything (docs/format.md §7), exactly as
// the Python loader onebit.runtime.format does (both accept and reject the same files; the tests
// run the fuzz corpora through both). JSON is parsed by nlohmann/json.
//
// Order of checks: header length bounds before any allocation, well-formed JSON (nesting at most
// 32 levels), format name and version, metadata documents, every tensor entry (dtype, shape,
// offsets in bounds, contiguous, non-overlapping), the graph (known ops, inputs defined before
// use, shapes consistent, accumulator bounds vs widths), every tensor against its op, then the
// contents the kernels rely on. Any failure throws FormatError naming the problem; nothing is
// returned from a half-checked file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "onebit/runtime/model.h"

namespace onebit::rt {

constexpr int kFormatVersion = 1;       // the oldest version read
constexpr int kOnePaddingVersion = 2;  // first version with one-padded binary convolutions (format.md §7.4)
constexpr int kMaxFormatVersion = 2;
constexpr int64_t kMaxHeaderBytes = int64_t{16} << 20;
constexpr int64_t kMaxFileBytes = int64_t{1} << 30;
constexpr int kMaxJsonDepth = 32;
constexpr int64_t kMaxDim = int64_t{1} << 20;
constexpr int64_t kMaxElements = int64_t{1} << 26;
constexpr int64_t kMaxTotalElements = int64_t{1} << 28;
constexpr int64_t kInt16MaxK = 32767;

// Validates the bytes of a model file (FormatError on anything malformed).
std::shared_ptr<Model> load_model(const uint8_t* data, size_t size);
// Reads and validates a file: IoError when it cannot be read, FormatError (prefixed with the
// path) when it is malformed or larger than kMaxFileBytes. With `release_prepared`, the weights
// an executor prepares (prepared_role) are checked like everything else and then released
// (Op::released): the executor reads them again, op by op, with load_op_weights, so that the
// raw and the prepared weights of the whole model are never in memory together.
std::shared_ptr<Model> load_model_file(const std::string& path, bool release_prepared = false);
// Reads op i's released prepared_role tensors again from the file `m` was loaded from and
// rebuilds Op::weight / Op::mask: IoError when the file cannot be read or no longer holds the
// same bytes there (each tensor's Tensor::hash); op i is unchanged then.
void load_op_weights(Model& m, size_t i, const std::string& path);

}  // namespace onebit::rt
