// Helpers of the loader (internal to src/cpp/onebit/runtime): JSON parsing with the format's
// limits, JSON type tests that match the Python loader's (an integer is never a boolean or a
// float), saturating sizes, and Python-like quoting for error messages.
#pragma once
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "onebit/runtime/loader.h"
#include "onebit/runtime/model.h"

namespace onebit::rt::detail {

using json = nlohmann::json;

[[noreturn]] inline void fail(const std::string& msg) { throw FormatError(msg); }

inline std::string q(const std::string& s) { return "'" + s + "'"; }

inline std::string repr(const json& j) {
  if (j.is_null()) return "None";
  if (j.is_boolean()) return j.get<bool>() ? "True" : "False";
  if (j.is_string()) return q(j.get<std::string>());
  std::string s = j.dump(-1, ' ', true, json::error_handler_t::replace);  // ASCII: safe to cut
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

inline std::string list_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Saturating product (values are non-negative): beyond `cap` the exact value does not matter.
inline int64_t prod_capped(const std::vector<int64_t>& v, int64_t cap = std::numeric_limits<int64_t>::max()) {
  int64_t p = 1;
  for (int64_t d : v) {
    if (d == 0) return 0;
  }
  for (int64_t d : v) {
    if (p > cap / d) return cap;
    p *= d;
  }
  return p;
}

// A JSON integer (not a boolean, not a float) that fits int64.
inline bool as_int(const json& j, int64_t& out) {
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    out = static_cast<int64_t>(u);
    return true;
  }
  if (j.is_number_integer()) {
    out = j.get<int64_t>();
    return true;
  }
  return false;
}

inline bool is_int(const json& j) { return j.is_number_integer(); }  // excludes booleans and floats

// A JSON number (integer or float, not a boolean) as a double; false for other types.
inline bool as_number(const json& j, double& out) {
  if (j.is_number_unsigned()) out = static_cast<double>(j.get<uint64_t>());
  else if (j.is_number_integer()) out = static_cast<double>(j.get<int64_t>());
  else if (j.is_number_float()) out = j.get<double>();
  else return false;
  return true;
}

inline const json* get(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

inline std::set<std::string> keys_of(const json& obj) {
  std::set<std::string> s;
  for (auto it = obj.begin(); it != obj.end(); ++it) s.insert(it.key());
  return s;
}

inline std::string keys_str(const std::set<std::string>& s) {
  std::string r = "[";
  bool first = true;
  for (const auto& k : s) {
    r += (first ? "" : ", ") + q(k);
    first = false;
  }
  return r + "]";
}

// Upper bound of the JSON nesting depth (brackets inside strings count too, like format.py).
inline int nesting(const uint8_t* p, size_t n) {
  int64_t depth = 0, best = 0;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] == '[' || p[i] == '{') best = std::max(best, ++depth);
    else if (p[i] == ']' || p[i] == '}') --depth;
  }
  return static_cast<int>(std::min<int64_t>(best, 1 << 30));
}

inline json parse_json(const uint8_t* p, size_t n, const std::string& what) {
  const int depth = nesting(p, n);
  if (depth > kMaxJsonDepth)
    fail(what + ": JSON nested " + std::to_string(depth) + " levels deep (limit " +
         std::to_string(kMaxJsonDepth) + ")");
  // a raw NUL byte is invalid JSON anywhere, but nlohmann's lexer reads it as the end of the
  // input (string literals): refuse it first, as Python's json does
  if (n && std::memchr(p, 0, n))
    fail(what + ": malformed JSON (a NUL byte at offset " +
         std::to_string(static_cast<const uint8_t*>(std::memchr(p, 0, n)) - p) + ")");
  try {
    // strict: one document and nothing but whitespace after it; no comments; invalid UTF-8,
    // NaN / Infinity and number overflow are parse errors
    return json::parse(p, p + n, nullptr, true, false);
  } catch (const json::exception& e) {
    // the parser quotes the offending bytes, which may be anything: keep the message printable
    std::string msg;
    for (const char* c = e.what(); *c; ++c) {
      const auto b = static_cast<unsigned char>(*c);
      if (b >= 0x20 && b < 0x7f) {
        msg += *c;
      } else {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", b);
        msg += hex;
      }
    }
    fail(what + ": malformed JSON (" + msg + ")");
  }
}

inline json parse_json(const std::string& s, const std::string& what) {
  return parse_json(reinterpret_cast<const uint8_t*>(s.data()), s.size(), what);
}

inline int64_t num_words(int64_t c) { return (c + 63) / 64; }

}  // namespace onebit::rt::detail
