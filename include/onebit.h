/* onebit C API: load a .onebit model and run it on the C++ engine, from C or C++.
 *
 *   onebit_model* m;
 *   if (onebit_open_file("model.onebit", &m) != ONEBIT_OK) { puts(onebit_last_error()); ... }
 *   int64_t h, w, c; onebit_input_shape(m, &h, &w, &c);
 *   float* logits = malloc(n * onebit_num_classes(m) * sizeof(float));
 *   onebit_run(m, images_u8_nhwc, n, logits, n * onebit_num_classes(m));
 *   onebit_close(m);
 *
 * Contract (docs/format.md, "C API"): every function that can fail returns an onebit_status;
 * on failure onebit_last_error() returns a message naming the problem (bad file, wrong size,
 * unsupported ISA, ...), valid until the calling thread's next onebit call. No C++ exception
 * crosses this boundary. A model is validated completely before onebit_open_* returns it; a
 * failed open returns no model. One model may be run by several threads at once; changing its
 * ISA or thread count must not overlap a run of the same model.
 */
#ifndef ONEBIT_H
#define ONEBIT_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define ONEBIT_API __declspec(dllexport)
#elif defined(ONEBIT_BUILDING_LIBRARY)
#define ONEBIT_API __attribute__((visibility("default")))
#else
#define ONEBIT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum onebit_status {
  ONEBIT_OK = 0,
  ONEBIT_ERROR_ARGUMENT = 1,    /* a bad argument: null pointer, wrong size, threads < 1 */
  ONEBIT_ERROR_IO = 2,          /* the file cannot be opened or read */
  ONEBIT_ERROR_FORMAT = 3,      /* malformed, truncated, newer format version, inconsistent graph */
  ONEBIT_ERROR_UNSUPPORTED = 4, /* an ISA the CPU or build lacks, an op the engine cannot run */
  ONEBIT_ERROR_MEMORY = 5,      /* out of memory */
  ONEBIT_ERROR_INTERNAL = 6     /* anything else (a bug: please report the message) */
} onebit_status;

typedef enum onebit_dtype { ONEBIT_UINT8 = 0, ONEBIT_FLOAT32 = 1 } onebit_dtype;

typedef struct onebit_model onebit_model;

/* Message of the calling thread's last failed call ("" if none). */
ONEBIT_API const char* onebit_last_error(void);
/* Name of a status ("ok", "argument", "io", "format", "unsupported", "memory", "internal"). */
ONEBIT_API const char* onebit_status_name(onebit_status s);

/* Open and validate a model, bound to the best ISA of the CPU (or ONEBIT_ISA) and the default
 * thread count (ONEBIT_NUM_THREADS or all cores). On success *out holds the model; on failure
 * *out is NULL. open_memory copies what it needs: `data` may be freed afterwards (its model
 * keeps the raw weights beside the prepared ones, docs/format.md §8 "Memory"). */
ONEBIT_API onebit_status onebit_open_file(const char* path, onebit_model** out);
ONEBIT_API onebit_status onebit_open_memory(const void* data, size_t size, onebit_model** out);
/* Frees the model (NULL is ignored). */
ONEBIT_API void onebit_close(onebit_model* model);

/* Input: one image is H x W x C uint8, NHWC (the normalization is part of the model). */
ONEBIT_API onebit_status onebit_input_shape(const onebit_model* model, int64_t* h, int64_t* w, int64_t* c);
ONEBIT_API onebit_status onebit_input_dtype(const onebit_model* model, onebit_dtype* dtype);
/* Output: one row of `classes` float32 logits per image. */
ONEBIT_API onebit_status onebit_output_shape(const onebit_model* model, int64_t* classes);
ONEBIT_API onebit_status onebit_output_dtype(const onebit_model* model, onebit_dtype* dtype);
/* Name of class i from the file's metadata, or NULL when the file names none (or i is out of range). */
ONEBIT_API const char* onebit_class_name(const onebit_model* model, int64_t i);

/* Worker threads per kernel (>= 1). */
ONEBIT_API onebit_status onebit_set_threads(onebit_model* model, int threads);
ONEBIT_API int onebit_threads(const onebit_model* model);
/* "scalar", "avx2", "avx512" (x86-64) or "neon" (AArch64): ONEBIT_ERROR_UNSUPPORTED when the CPU
 * or build lacks it. Binary and int8 convolution weights are prepared again for the new ISA: a
 * model opened from a file reads them from that file again (it keeps only the prepared ones),
 * ONEBIT_ERROR_IO when the file is gone or no longer holds the same bytes; on any failure the
 * model keeps its ISA and stays usable. */
ONEBIT_API onebit_status onebit_set_isa(onebit_model* model, const char* isa);
ONEBIT_API const char* onebit_isa(const onebit_model* model);
/* ISAs this CPU and build can run, comma-separated, slowest first. */
ONEBIT_API const char* onebit_supported_isas(void);
/* Capabilities kernels use within an ISA, comma-separated ("" when none): "neon-dotprod" where an
 * AArch64 CPU has the Armv8.2 dot product (the NEON int8 convolution then runs SDOT). */
ONEBIT_API const char* onebit_cpu_features(void);

/* Runs `batch` images: input batch x H x W x C uint8 (the caller's buffer, read only), output
 * batch x classes float32. `output_len` is the number of floats `output` holds: it must be at
 * least batch * classes (ONEBIT_ERROR_ARGUMENT otherwise). */
ONEBIT_API onebit_status onebit_run(onebit_model* model, const uint8_t* input, int64_t batch, float* output,
                                    size_t output_len);
/* Ops of the graph, in execution order: count, name and type ("bconv2d", "maxpool2d", ...) of op i. */
ONEBIT_API int64_t onebit_num_ops(const onebit_model* model);
ONEBIT_API const char* onebit_op_name(const onebit_model* model, int64_t i);
ONEBIT_API const char* onebit_op_type(const onebit_model* model, int64_t i);
/* onebit_run that also stores each op's wall time in milliseconds in op_ms[0 .. num_ops-1]
 * (op_ms_len >= onebit_num_ops, ONEBIT_ERROR_ARGUMENT otherwise). */
ONEBIT_API onebit_status onebit_run_profiled(onebit_model* model, const uint8_t* input, int64_t batch, float* output,
                                             size_t output_len, double* op_ms, size_t op_ms_len);
/* Bytes of the activation buffers the executor plans for `batch` images (buffers are reused
 * between ops by liveness), or -1 on a bad argument. */
ONEBIT_API int64_t onebit_activation_bytes(onebit_model* model, int64_t batch);

#ifdef __cplusplus
}
#endif

#endif /* ONEBIT_H */
