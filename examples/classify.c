/* Classify one image with the onebit C API.
 *   classify MODEL.onebit IMAGE.raw
 * IMAGE.raw: the model's H x W x C uint8 pixels, row-major NHWC (e.g. 784 bytes for MNIST). */
#include <stdio.h>
#include <stdlib.h>

#include "onebit.h"

static int fail(onebit_model* m, const char* what) {
  fprintf(stderr, "classify: %s: %s\n", what, onebit_last_error());
  onebit_close(m);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL.onebit IMAGE.raw\n", argv[0]);
    return 2;
  }
  onebit_model* m = NULL;
  if (onebit_open_file(argv[1], &m) != ONEBIT_OK) return fail(m, "cannot load the model");
  int64_t h, w, c, classes;
  onebit_input_shape(m, &h, &w, &c);
  onebit_output_shape(m, &classes);
  size_t n = (size_t)(h * w * c);
  unsigned char* image = malloc(n + 1);
  float* logits = malloc((size_t)classes * sizeof(float));
  FILE* f = fopen(argv[2], "rb");
  size_t got = f ? fread(image, 1, n + 1, f) : 0;
  if (f) fclose(f);
  if (got != n) {
    fprintf(stderr, "classify: %s must hold exactly %zu bytes (%lld x %lld x %lld uint8), got %zu\n",
            argv[2], n, (long long)h, (long long)w, (long long)c, got);
    free(image), free(logits), onebit_close(m);
    return 1;
  }
  if (onebit_run(m, image, 1, logits, (size_t)classes) != ONEBIT_OK) return fail(m, "run failed");
  int64_t best = 0;
  for (int64_t i = 1; i < classes; ++i)
    if (logits[i] > logits[best]) best = i;
  const char* name = onebit_class_name(m, best);
  printf("class %lld (%s) logit %.4f\n", (long long)best, name ? name : "unnamed", logits[best]);
  free(image), free(logits), onebit_close(m);
  return 0;
}
