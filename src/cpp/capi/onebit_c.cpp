// The C API (include/onebit.h) over the C++ runtime. Every entry point catches every exception
// and turns it into a status code and a thread-local message.
#include "onebit.h"

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>
#include <algorithm>

#include "onebit/isa.h"
#include "onebit/runtime/executor.h"
#include "onebit/runtime/loader.h"
#include "onebit/threadpool.h"

namespace rt = onebit::rt;

// `path`: the file of onebit_open_file, whose raw weights are released once prepared and read
// again from it when another ISA is prepared; empty for onebit_open_memory, whose model keeps
// them (the caller's buffer may be gone).
struct onebit_model {
  std::shared_ptr<rt::Model> model;
  std::string path;
  std::unique_ptr<rt::Executor> exe;
};

namespace {

thread_local std::string g_error;

onebit_status set_error(onebit_status s, const std::string& msg) {
  g_error = msg;
  return s;
}

// Runs fn, mapping every exception to a status and message.
template <class F>
onebit_status guarded(F&& fn) {
  try {
    g_error.clear();
    return fn();
  } catch (const rt::FormatError& e) {
    return set_error(ONEBIT_ERROR_FORMAT, e.what());
  } catch (const rt::IoError& e) {
    return set_error(ONEBIT_ERROR_IO, e.what());
  } catch (const std::bad_alloc&) {
    return set_error(ONEBIT_ERROR_MEMORY, "out of memory");
  } catch (const std::invalid_argument& e) {
    return set_error(ONEBIT_ERROR_ARGUMENT, e.what());
  } catch (const std::exception& e) {
    return set_error(ONEBIT_ERROR_INTERNAL, e.what());
  } catch (...) {
    return set_error(ONEBIT_ERROR_INTERNAL, "unknown error");
  }
}

rt::RawWeights raw_weights(const onebit_model& h) {
  return h.path.empty() ? rt::RawWeights::keep : rt::RawWeights::release;
}

onebit_status need(const void* p, const char* what) {
  return p ? ONEBIT_OK : set_error(ONEBIT_ERROR_ARGUMENT, std::string(what) + " must not be NULL");
}

onebit_status open_model(std::shared_ptr<rt::Model> m, std::string path, onebit_model** out) {
  auto h = std::make_unique<onebit_model>();
  h->model = std::move(m);
  h->path = std::move(path);
  onebit::Isa isa;
  try {
    isa = onebit::default_isa();  // ONEBIT_ISA may name one the CPU lacks
  } catch (const std::exception& e) {
    return set_error(ONEBIT_ERROR_UNSUPPORTED, e.what());
  }
  h->exe = std::make_unique<rt::Executor>(h->model, isa, onebit::default_num_threads(), raw_weights(*h), h->path);
  *out = h.release();
  return ONEBIT_OK;
}

}  // namespace

static onebit_status run_impl(onebit_model* model, const uint8_t* input, int64_t batch, float* output,
                              size_t output_len, std::vector<double>* op_ms) {
  if (onebit_status s = need(model, "model"); s != ONEBIT_OK) return s;
  if (onebit_status s = need(input, "input"); s != ONEBIT_OK) return s;
  if (onebit_status s = need(output, "output"); s != ONEBIT_OK) return s;
  if (batch < 1) return set_error(ONEBIT_ERROR_ARGUMENT, "batch must be >= 1, got " + std::to_string(batch));
  const int64_t classes = model->model->num_classes;
  if (static_cast<uint64_t>(batch) > output_len / static_cast<uint64_t>(classes))
    return set_error(ONEBIT_ERROR_ARGUMENT, "output holds " + std::to_string(output_len) + " floats but batch " +
                                                std::to_string(batch) + " x " + std::to_string(classes) +
                                                " classes needs " + std::to_string(batch * classes));
  return guarded([&] {
    model->exe->run(input, batch, output, op_ms);
    return ONEBIT_OK;
  });
}


extern "C" {

const char* onebit_last_error(void) { return g_error.c_str(); }

const char* onebit_status_name(onebit_status s) {
  switch (s) {
    case ONEBIT_OK: return "ok";
    case ONEBIT_ERROR_ARGUMENT: return "argument";
    case ONEBIT_ERROR_IO: return "io";
    case ONEBIT_ERROR_FORMAT: return "format";
    case ONEBIT_ERROR_UNSUPPORTED: return "unsupported";
    case ONEBIT_ERROR_MEMORY: return "memory";
    default: return "internal";
  }
}

onebit_status onebit_open_file(const char* path, onebit_model** out) {
  if (out) *out = nullptr;
  if (onebit_status s = need(out, "out"); s != ONEBIT_OK) return s;
  if (onebit_status s = need(path, "path"); s != ONEBIT_OK) return s;
  return guarded([&] { return open_model(rt::load_model_file(path, true), path, out); });
}

onebit_status onebit_open_memory(const void* data, size_t size, onebit_model** out) {
  if (out) *out = nullptr;
  if (onebit_status s = need(out, "out"); s != ONEBIT_OK) return s;
  if (onebit_status s = need(data, "data"); s != ONEBIT_OK) return s;
  return guarded([&] { return open_model(rt::load_model(static_cast<const uint8_t*>(data), size), "", out); });
}

void onebit_close(onebit_model* model) { delete model; }

onebit_status onebit_input_shape(const onebit_model* model, int64_t* h, int64_t* w, int64_t* c) {
  if (!model || !h || !w || !c) return set_error(ONEBIT_ERROR_ARGUMENT, "model, h, w and c must not be NULL");
  *h = model->model->in_h;
  *w = model->model->in_w;
  *c = model->model->in_c;
  return ONEBIT_OK;
}

onebit_status onebit_input_dtype(const onebit_model* model, onebit_dtype* dtype) {
  if (!model || !dtype) return set_error(ONEBIT_ERROR_ARGUMENT, "model and dtype must not be NULL");
  *dtype = ONEBIT_UINT8;
  return ONEBIT_OK;
}

onebit_status onebit_output_shape(const onebit_model* model, int64_t* classes) {
  if (!model || !classes) return set_error(ONEBIT_ERROR_ARGUMENT, "model and classes must not be NULL");
  *classes = model->model->num_classes;
  return ONEBIT_OK;
}

onebit_status onebit_output_dtype(const onebit_model* model, onebit_dtype* dtype) {
  if (!model || !dtype) return set_error(ONEBIT_ERROR_ARGUMENT, "model and dtype must not be NULL");
  *dtype = ONEBIT_FLOAT32;
  return ONEBIT_OK;
}

const char* onebit_class_name(const onebit_model* model, int64_t i) {
  if (!model || i < 0 || i >= static_cast<int64_t>(model->model->class_names.size())) return nullptr;
  return model->model->class_names[static_cast<size_t>(i)].c_str();
}

onebit_status onebit_set_threads(onebit_model* model, int threads) {
  if (onebit_status s = need(model, "model"); s != ONEBIT_OK) return s;
  if (threads < 1) return set_error(ONEBIT_ERROR_ARGUMENT, "threads must be >= 1, got " + std::to_string(threads));
  return guarded([&] {
    model->exe->set_threads(threads);
    return ONEBIT_OK;
  });
}

int onebit_threads(const onebit_model* model) { return model ? model->exe->threads() : 0; }

onebit_status onebit_set_isa(onebit_model* model, const char* isa) {
  if (onebit_status s = need(model, "model"); s != ONEBIT_OK) return s;
  if (onebit_status s = need(isa, "isa"); s != ONEBIT_OK) return s;
  onebit::Isa v;
  try {
    v = onebit::isa_from_name(isa);
  } catch (const std::exception& e) {
    return set_error(ONEBIT_ERROR_UNSUPPORTED, e.what());
  }
  if (!onebit::isa_supported(v))
    return set_error(ONEBIT_ERROR_UNSUPPORTED, std::string("ISA '") + isa + "' is not supported by this CPU/build (supported: " +
                                                   onebit_supported_isas() + ")");
  return guarded([&] {
    if (v == model->exe->isa()) return ONEBIT_OK;
    // the new executor is built beside the old one, which stays in place when anything fails
    // (a file model's weights are read again from its file, op by op)
    model->exe = std::make_unique<rt::Executor>(model->model, v, model->exe->threads(), raw_weights(*model),
                                                model->path);
    return ONEBIT_OK;
  });
}

const char* onebit_isa(const onebit_model* model) { return model ? onebit::isa_name(model->exe->isa()) : ""; }

namespace {
std::string comma_list(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& i : items) s += (s.empty() ? "" : ",") + i;
  return s;
}
}  // namespace

const char* onebit_supported_isas(void) {
  static const std::string names = [] {
    std::vector<std::string> v;
    for (auto i : onebit::supported_isas()) v.emplace_back(onebit::isa_name(i));
    return comma_list(v);
  }();
  return names.c_str();
}

const char* onebit_cpu_features(void) {
  static const std::string names = comma_list(onebit::cpu_features());
  return names.c_str();
}

int64_t onebit_num_ops(const onebit_model* model) {
  return model ? static_cast<int64_t>(model->model->ops.size()) : 0;
}

const char* onebit_op_name(const onebit_model* model, int64_t i) {
  if (!model || i < 0 || i >= onebit_num_ops(model)) return nullptr;
  return model->model->ops[static_cast<size_t>(i)].name.c_str();
}

const char* onebit_op_type(const onebit_model* model, int64_t i) {
  if (!model || i < 0 || i >= onebit_num_ops(model)) return nullptr;
  return rt::op_type_name(model->model->ops[static_cast<size_t>(i)].type);
}

onebit_status onebit_run_profiled(onebit_model* model, const uint8_t* input, int64_t batch, float* output,
                                  size_t output_len, double* op_ms, size_t op_ms_len) {
  if (onebit_status s = need(op_ms, "op_ms"); s != ONEBIT_OK) return s;
  if (onebit_status s = need(model, "model"); s != ONEBIT_OK) return s;
  if (op_ms_len < static_cast<size_t>(onebit_num_ops(model)))
    return set_error(ONEBIT_ERROR_ARGUMENT, "op_ms holds " + std::to_string(op_ms_len) + " values but the model has " +
                                                std::to_string(onebit_num_ops(model)) + " ops");
  thread_local std::vector<double> ms;
  onebit_status s = run_impl(model, input, batch, output, output_len, &ms);
  if (s == ONEBIT_OK) std::copy(ms.begin(), ms.end(), op_ms);
  return s;
}

onebit_status onebit_run(onebit_model* model, const uint8_t* input, int64_t batch, float* output, size_t output_len) {
  return run_impl(model, input, batch, output, output_len, nullptr);
}

int64_t onebit_activation_bytes(onebit_model* model, int64_t batch) {
  if (!model || batch < 1) {
    set_error(ONEBIT_ERROR_ARGUMENT, "model must not be NULL and batch >= 1");
    return -1;
  }
  int64_t r = -1;
  guarded([&] {
    r = model->exe->activation_bytes(batch);
    return ONEBIT_OK;
  });
  return r;
}

}  // extern "C"
