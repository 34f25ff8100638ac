// onebit-run: run or time a .onebit model from the command line (no Python), over the C API.
//
//   onebit-run MODEL.onebit [--input FILE] [--batch N] [--threads N] [--isa NAME] [--repeats R]
//              [--logits FILE] [--json]
//
// With --input (raw uint8 NHWC images, N x H x W x C bytes): the top-5 classes of every image,
// named from the file's metadata. Without --input, or with --repeats: a timing table (median and
// minimum milliseconds over R runs, one warm-up run excluded) with the CPU, ISA and threads, on
// the given images or on a fixed pseudo-random batch, and the sum of the ops' own times (R more
// runs, each op timed inside the executor; --profile lists them). --json prints one JSON object instead
// (it always holds the plan's activation bytes and the peak resident memory). --logits writes the
// float32 logits of the input as raw little-endian bytes. Errors: one line on stderr, exit 1
// (2 for a bad command line).
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "onebit.h"

namespace {

[[noreturn]] void die(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "onebit-run: %s\n", msg.c_str());
  std::exit(code);
}

void check(onebit_status s, const std::string& what) {
  if (s != ONEBIT_OK) die(what + ": " + onebit_last_error());
}

const char* kUsage =
    "usage: onebit-run MODEL.onebit [--input FILE] [--batch N] [--threads N] [--isa NAME] "
    "[--repeats R] [--logits FILE] [--json] [--profile]";

int64_t parse_int(const char* opt, const char* v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v, &end, 10);
  if (errno || !*v || *end || x < lo || x > hi)
    die(std::string(opt) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
            v + "'",
        2);
  return x;
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(line.find_first_not_of(" \t", p + 1));
    }
  return "unknown";
}

std::string json_str(const std::string& s) {
  std::string r = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') r += '\\', r += static_cast<char>(c);
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      r += b;
    } else r += static_cast<char>(c);
  }
  return r + "\"";
}

int64_t peak_rss_bytes() {
  // VmHWM of this process image (getrusage's ru_maxrss would include the peak of a parent that
  // forked us: Linux keeps it across execve)
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, input_path, isa, logits_path;
  int64_t threads = 0, repeats = -1, batch = 0;
  bool as_json = false, profile = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) die(a + " needs a value\n" + kUsage, 2);
      return argv[++i];
    };
    if (a == "--input") input_path = value();
    else if (a == "--threads") threads = parse_int("--threads", value(), 1, 1024);
    else if (a == "--isa") isa = value();
    else if (a == "--repeats") repeats = parse_int("--repeats", value(), 1, 1000000);
    else if (a == "--batch") batch = parse_int("--batch", value(), 1, 1 << 20);
    else if (a == "--logits") logits_path = value();
    else if (a == "--json") as_json = true;
    else if (a == "--profile") profile = true;
    else if (a == "-h" || a == "--help") {
      std::puts(kUsage);
      return 0;
    } else if (!a.empty() && a[0] == '-') die("unknown option " + a + "\n" + kUsage, 2);
    else if (model_path.empty()) model_path = a;
    else die("more than one model given\n" + std::string(kUsage), 2);
  }
  if (model_path.empty()) die(kUsage, 2);

  onebit_model* m = nullptr;
  check(onebit_open_file(model_path.c_str(), &m), "cannot load the model");
  if (threads) check(onebit_set_threads(m, static_cast<int>(threads)), "--threads");
  if (!isa.empty()) check(onebit_set_isa(m, isa.c_str()), "--isa");
  int64_t h, w, c, classes;
  check(onebit_input_shape(m, &h, &w, &c), "input shape");
  check(onebit_output_shape(m, &classes), "output shape");
  const int64_t image_bytes = h * w * c;

  std::vector<uint8_t> input;
  if (!input_path.empty()) {
    std::ifstream f(input_path, std::ios::binary);
    if (!f) die("cannot open input file '" + input_path + "'");
    input.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (input.empty() || input.size() % static_cast<size_t>(image_bytes))
      die("input file '" + input_path + "' holds " + std::to_string(input.size()) + " bytes, not a multiple of one " +
          std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c) + " uint8 image (" +
          std::to_string(image_bytes) + " bytes)");
    const int64_t n = static_cast<int64_t>(input.size()) / image_bytes;
    if (batch && batch != n) die("--batch " + std::to_string(batch) + " but the input holds " + std::to_string(n) + " images");
    batch = n;
  } else {
    if (!batch) batch = 1;
    input.resize(static_cast<size_t>(batch * image_bytes));
    uint64_t s = 0x9E3779B97F4A7C15ull;  // fixed pseudo-random images (xorshift)
    for (auto& b : input) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      b = static_cast<uint8_t>(s >> 56);
    }
  }
  std::vector<float> logits(static_cast<size_t>(batch * classes));
  check(onebit_run(m, input.data(), batch, logits.data(), logits.size()), "run failed");
  if (!logits_path.empty()) {
    std::ofstream f(logits_path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!f) die("cannot write '" + logits_path + "'");
  }
  const bool timing = input_path.empty() || repeats > 0;
  if (repeats < 0) repeats = 20;
  std::vector<double> ms;
  if (timing)
    for (int64_t r = 0; r < repeats; ++r) {  // the run above was the warm-up
      auto t0 = std::chrono::steady_clock::now();
      check(onebit_run(m, input.data(), batch, logits.data(), logits.size()), "run failed");
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  // then R profiled runs: each op timed inside the executor, and the same call end to end
  const int64_t nops = onebit_num_ops(m);
  std::vector<std::vector<double>> per_op(static_cast<size_t>(nops));
  std::vector<double> kern, ratio, op_ms(static_cast<size_t>(nops));
  if (timing)
    for (int64_t r = 0; r < repeats; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      check(onebit_run_profiled(m, input.data(), batch, logits.data(), logits.size(), op_ms.data(), op_ms.size()),
            "run failed");
      const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      double sum = 0;
      for (int64_t i = 0; i < nops; ++i) {
        sum += op_ms[size_t(i)];
        per_op[size_t(i)].push_back(op_ms[size_t(i)]);
      }
      kern.push_back(sum);
      ratio.push_back(sum > 0 ? wall / sum : 0);
    }
  auto median = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  std::sort(ms.begin(), ms.end());
  const double med = median(ms);
  const int64_t act = onebit_activation_bytes(m, batch);

  // top-5 of every image
  std::vector<std::vector<int64_t>> top(static_cast<size_t>(input_path.empty() ? 0 : batch));
  for (size_t b = 0; b < top.size(); ++b) {
    std::vector<int64_t> idx(static_cast<size_t>(classes));
    std::iota(idx.begin(), idx.end(), 0);
    const float* row = logits.data() + b * static_cast<size_t>(classes);
    const size_t k = std::min<size_t>(5, idx.size());
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(),
                      [&](int64_t x, int64_t y) { return row[x] > row[y] || (row[x] == row[y] && x < y); });
    top[b].assign(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k));
  }
  auto name = [&](int64_t i) {
    const char* n = onebit_class_name(m, i);
    return std::string(n ? n : "class " + std::to_string(i));
  };
  if (as_json) {
    std::printf("{\"model\": %s, \"cpu\": %s, \"isa\": %s, \"cpu_features\": %s, \"threads\": %d, \"batch\": %lld, "
                "\"input\": [%lld, %lld, %lld], \"classes\": %lld, \"activation_bytes\": %lld, "
                "\"peak_rss_bytes\": %lld",
                json_str(model_path).c_str(), json_str(cpu_name()).c_str(), json_str(onebit_isa(m)).c_str(),
                json_str(onebit_cpu_features()).c_str(), onebit_threads(m), (long long)batch, (long long)h, (long long)w, (long long)c, (long long)classes,
                (long long)act, (long long)peak_rss_bytes());
    if (timing) {
      std::printf(", \"repeats\": %lld, \"median_ms\": %.6f, \"min_ms\": %.6f, \"kernel_sum_median_ms\": %.6f, "
                  "\"end_to_end_over_kernels\": %.6f, \"ops\": [",
                  (long long)repeats, med, ms.front(), median(kern), median(ratio));
      for (int64_t i = 0; i < nops; ++i)
        std::printf("%s{\"name\": %s, \"type\": %s, \"median_ms\": %.6f}", i ? ", " : "",
                    json_str(onebit_op_name(m, i)).c_str(), json_str(onebit_op_type(m, i)).c_str(),
                    median(per_op[size_t(i)]));
      std::printf("]");
    }
    if (!top.empty()) {
      std::printf(", \"top5\": [");
      for (size_t b = 0; b < top.size(); ++b) {
        std::printf("%s[", b ? ", " : "");
        for (size_t j = 0; j < top[b].size(); ++j)
          std::printf("%s{\"class\": %lld, \"name\": %s, \"logit\": %.9g}", j ? ", " : "", (long long)top[b][j],
                      json_str(name(top[b][j])).c_str(), logits[b * size_t(classes) + size_t(top[b][j])]);
        std::printf("]");
      }
      std::printf("]");
    }
    std::printf("}\n");
  } else {
    for (size_t b = 0; b < top.size(); ++b) {
      std::printf("image %zu:\n", b);
      for (int64_t i : top[b])
        std::printf("  %10.4f  %lld  %s\n", logits[b * size_t(classes) + size_t(i)], (long long)i, name(i).c_str());
    }
    if (timing) {
      std::printf("%-10s %s\n%-10s %s\n%-10s %s\n%-10s %s\n%-10s %d\n%-10s %lld\n", "model", model_path.c_str(),
                  "cpu", cpu_name().c_str(), "isa", onebit_isa(m), "features",
                  *onebit_cpu_features() ? onebit_cpu_features() : "-", "threads", onebit_threads(m), "batch",
                  (long long)batch);
      std::printf("%-10s %lld (warm-up excluded)\n%-10s %.3f ms\n%-10s %.3f ms\n", "repeats", (long long)repeats,
                  "median", med, "min", ms.front());
      std::printf("%-10s %.3f ms (median over runs of the sum of op times; end to end / kernels %.3f)\n", "kernels",
                  median(kern), median(ratio));
      std::printf("%-10s %lld bytes\n%-10s %lld bytes\n", "activations", (long long)act, "peak RSS",
                  (long long)peak_rss_bytes());
      if (profile) {
        std::printf("%-24s %-16s %10s\n", "op", "type", "median ms");
        for (int64_t i = 0; i < nops; ++i)
          std::printf("%-24s %-16s %10.4f\n", onebit_op_name(m, i), onebit_op_type(m, i), median(per_op[size_t(i)]));
      }
    }
  }
  onebit_close(m);
  return 0;
}
