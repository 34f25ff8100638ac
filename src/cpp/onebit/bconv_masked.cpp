// Pruned (masked) binary layers: the list layout of the AVX2 masked kernel, built once per layer
// (prepare_weights, or per call without it). Plain C++ compiled without ISA flags: it only
// classifies and copies words, and keeping its std containers out of the ISA translation units
// keeps their out-of-line code free of AVX instructions (tests/engine/test_isa_isolation.py).
// Layout and kernel: onebit/bconv.h (PreparedWeights), kernels/bconv_masked_avx2.cpp.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "onebit/bconv.h"

namespace onebit::kernels {

namespace {
constexpr int64_t kCB = 8;  // output channels per block
constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0Full;
}  // namespace

void prepare_masked_list(const uint64_t* w, const uint64_t* mask, const BConvShape& s, PreparedWeights& p,
                         int threads) {
  (void)threads;  // one pass over the weights; runs once per layer
  const int64_t taps = s.kh * s.kw, W64 = s.words(), blocks = (s.cout + kCB - 1) / kCB, tws = taps * W64;
  const int64_t last_bits = s.cin - (W64 - 1) * 64;
  const uint64_t last_full = last_bits == 64 ? ~uint64_t{0} : (uint64_t{1} << last_bits) - 1;
  const int64_t sw = s.kw + 1;
  p.masked = true;
  p.nwords = 0;
  p.pcw.clear();
  p.dk_prefix.assign(static_cast<size_t>(blocks * (s.kh + 1) * sw * kCB), 0);
  p.pw_prefix.assign(static_cast<size_t>(blocks * (s.kh + 1) * sw * kCB), 0);
  // 1. Per block and tap word: 0 = no kept weight in the 8 channels, 1 = every real channel
  //    keeps the whole word, 2 = partial. Per tap and channel: kept weights and weight popcount.
  auto word_at = [&](const uint64_t* a, int64_t b, int64_t j, int64_t tw) -> uint64_t {
    const int64_t co = b * kCB + j;
    return co < s.cout ? a[co * tws + tw] : 0;
  };
  std::vector<uint8_t> kind(static_cast<size_t>(blocks * tws), 0);
  for (int64_t b = 0; b < blocks; ++b) {
    int32_t* D = p.dk_prefix.data() + b * (s.kh + 1) * sw * kCB;
    int32_t* Q = p.pw_prefix.data() + b * (s.kh + 1) * sw * kCB;
    for (int64_t tap = 0; tap < taps; ++tap) {
      const int64_t kh = tap / s.kw, kw = tap % s.kw;
      int32_t kept[kCB] = {}, pcw[kCB] = {};
      for (int64_t wd = 0; wd < W64; ++wd) {
        const int64_t tw = tap * W64 + wd;
        const uint64_t fullm = wd == W64 - 1 ? last_full : ~uint64_t{0};
        bool any = false, full = true;
        for (int64_t j = 0; j < kCB; ++j) {
          const uint64_t m = word_at(mask, b, j, tw);
          any = any || m != 0;
          full = full && (b * kCB + j >= s.cout || m == fullm);  // channels >= Cout are never written
          kept[j] += static_cast<int32_t>(__builtin_popcountll(m));
          pcw[j] += static_cast<int32_t>(__builtin_popcountll(word_at(w, b, j, tw)));
        }
        kind[b * tws + tw] = !any ? 0 : full ? 1 : 2;
      }
      // 2-D prefix sums: S[kh+1][kw+1] = S[kh][kw+1] + S[kh+1][kw] - S[kh][kw] + value(kh, kw)
      auto add = [&](int32_t* S, int64_t j, int32_t v) {
        S[((kh + 1) * sw + kw + 1) * kCB + j] = S[(kh * sw + kw + 1) * kCB + j] + S[((kh + 1) * sw + kw) * kCB + j] -
                                                S[(kh * sw + kw) * kCB + j] + v;
      };
      for (int64_t j = 0; j < kCB; ++j) {
        add(D, j, kept[j] - 2 * pcw[j]);
        add(Q, j, pcw[j]);
      }
    }
  }
  // 2. Groups: blocks b, b+1 (b even) share 16-channel tiles when the union of their lists costs
  //    less than the two lists (cost model: a 16-channel entry = 1.75 8-channel entries, a
  //    partial entry = 4/3 of a full one); otherwise one block per group.
  auto cost1 = [&](int64_t b) {
    int64_t c = 0;
    for (int64_t tw = 0; tw < tws; ++tw) c += kind[b * tws + tw] == 0 ? 0 : kind[b * tws + tw] == 1 ? 3 : 4;
    return 4 * c;
  };
  auto cost2 = [&](int64_t b) {
    int64_t c = 0;
    for (int64_t tw = 0; tw < tws; ++tw) {
      const int k0 = kind[b * tws + tw], k1 = kind[(b + 1) * tws + tw];
      c += (k0 | k1) == 0 ? 0 : (k0 == 1 && k1 == 1) ? 3 : 4;
    }
    return 7 * c;
  };
  p.groups.clear();
  p.block_group.assign(static_cast<size_t>(blocks), 0);
  for (int64_t b = 0; b < blocks;) {
    const int64_t nb = b % 2 == 0 && b + 1 < blocks && cost2(b) < cost1(b) + cost1(b + 1) ? 2 : 1;
    for (int64_t i = 0; i < nb; ++i) p.block_group[b + i] = static_cast<int32_t>(p.groups.size() / 2);
    p.groups.push_back(static_cast<int32_t>(b));
    p.groups.push_back(static_cast<int32_t>(nb));
    b += nb;
  }
  // 3. Lists per group, sorted by kh (tap words ascend with kh): an entry is full when every
  //    block of the group keeps the whole word.
  const int64_t ngroups = static_cast<int64_t>(p.groups.size() / 2);
  p.ent_full.clear();
  p.ent_part.clear();
  p.rows_full.assign(static_cast<size_t>(ngroups * (s.kh + 1)), 0);
  p.rows_part.assign(static_cast<size_t>(ngroups * (s.kh + 1)), 0);
  p.wfull_at.assign(static_cast<size_t>(ngroups), 0);
  p.wpart_at.assign(static_cast<size_t>(ngroups), 0);
  std::vector<uint64_t> full_words, part_words;
  p.split_words = !(s.kh == 1 && s.kw == 1);
  auto push_split = [&](std::vector<uint64_t>& dst, const uint64_t* a, int64_t b, int64_t tw) {
    if (!p.split_words) {
      for (int64_t j = 0; j < kCB; ++j) dst.push_back(word_at(a, b, j, tw));
      return;
    }
    for (int64_t j = 0; j < kCB; ++j) dst.push_back(word_at(a, b, j, tw) & kLowNibbles);
    for (int64_t j = 0; j < kCB; ++j) dst.push_back((word_at(a, b, j, tw) >> 4) & kLowNibbles);
  };
  for (int64_t gi = 0; gi < ngroups; ++gi) {
    const int64_t b0 = p.groups[2 * gi], nb = p.groups[2 * gi + 1];
    p.wfull_at[gi] = static_cast<int64_t>(full_words.size());
    p.wpart_at[gi] = static_cast<int64_t>(part_words.size());
    for (int64_t kh = 0; kh <= s.kh; ++kh) {
      p.rows_full[gi * (s.kh + 1) + kh] = static_cast<int64_t>(p.ent_full.size());
      p.rows_part[gi * (s.kh + 1) + kh] = static_cast<int64_t>(p.ent_part.size());
      if (kh == s.kh) break;
      for (int64_t tw = kh * s.kw * W64; tw < (kh + 1) * s.kw * W64; ++tw) {
        bool any = false, full = true;
        for (int64_t b = b0; b < b0 + nb; ++b) {
          any = any || kind[b * tws + tw] != 0;
          full = full && kind[b * tws + tw] == 1;
        }
        if (!any) continue;  // no kept weight in the group: the entry is skipped
        (full ? p.ent_full : p.ent_part).push_back((kh << 32) | (tw - kh * s.kw * W64));
        for (int64_t b = b0; b < b0 + nb; ++b) {
          push_split(full ? full_words : part_words, w, b, tw);
          if (!full) push_split(part_words, mask, b, tw);
        }
      }
    }
  }
  auto store = [](const std::vector<uint64_t>& v) {
    auto sp = aligned_words(v.size());
    std::copy(v.begin(), v.end(), sp.get());
    return sp;
  };
  p.wfull = store(full_words);
  p.wpart = store(part_words);
}

}  // namespace onebit::kernels

namespace onebit::kernels {

void prepare_masked_groups(const uint64_t* mask, const BConvShape& s, int nc, PreparedWeights& p) {
  const int64_t taps = s.kh * s.kw, W64 = s.words(), row_words = s.kw * W64, tws = taps * W64;
  const int64_t last_bits = s.cin - (W64 - 1) * 64;
  const uint64_t last_full = last_bits == 64 ? ~uint64_t{0} : (uint64_t{1} << last_bits) - 1;
  p.ng_kept.assign(static_cast<size_t>(s.cout * taps), 0);
  std::vector<bool> live(static_cast<size_t>(s.cout), false);
  for (int64_t co = 0; co < s.cout; ++co)
    for (int64_t t = 0; t < taps; ++t) {
      int32_t k = 0;
      for (int64_t wd = 0; wd < W64; ++wd) k += __builtin_popcountll(mask[co * tws + t * W64 + wd]);
      p.ng_kept[static_cast<size_t>(co * taps + t)] = k;
      if (k) live[static_cast<size_t>(co)] = true;
    }
  p.ng_span.assign(1, 0);
  p.ng_dead_span.assign(1, 0);
  p.ng_dead.clear();
  p.ng_first.assign(1, 0);
  p.ng_chan.clear();
  p.ng_rows.assign(1, 0);
  p.ng_seg.clear();
  // One group: its channels, then per kernel row the runs of words some channel keeps.
  auto add_group = [&](const int32_t* ch, int n) {
    p.ng_chan.insert(p.ng_chan.end(), ch, ch + n);
    p.ng_first.push_back(static_cast<int32_t>(p.ng_chan.size()));
    for (int64_t kh = 0; kh < s.kh; ++kh) {
      int64_t begin = -1;
      bool full = true;
      for (int64_t i = 0; i <= row_words; ++i) {
        bool any = false, all = true;
        if (i < row_words) {
          const uint64_t fullm = i % W64 == W64 - 1 ? last_full : ~uint64_t{0};
          for (int j = 0; j < n; ++j) {
            const uint64_t m = mask[ch[j] * tws + kh * row_words + i];
            any = any || m != 0;
            all = all && m == fullm;
          }
        }
        if (any && begin < 0) {
          begin = i;
          full = true;
        }
        if (any) full = full && all;
        if (!any && begin >= 0) {
          p.ng_seg.insert(p.ng_seg.end(), {static_cast<int32_t>(begin), static_cast<int32_t>(i), full ? 1 : 0});
          begin = -1;
        }
      }
      p.ng_rows.push_back(static_cast<int32_t>(p.ng_seg.size() / 3));
    }
  };
  for (int64_t c0 = 0; c0 < s.cout; c0 += 64) {
    std::vector<int32_t> ch;
    for (int64_t co = c0; co < std::min(s.cout, c0 + 64); ++co) {
      if (live[static_cast<size_t>(co)])
        ch.push_back(static_cast<int32_t>(co));
      else
        p.ng_dead.push_back(static_cast<int32_t>(co));
    }
    size_t i = 0;
    for (int size : {nc, 4, 1})
      for (; size <= nc && i + static_cast<size_t>(size) <= ch.size(); i += static_cast<size_t>(size))
        add_group(ch.data() + i, size);
    p.ng_span.push_back(static_cast<int32_t>(p.ng_first.size() - 1));
    p.ng_dead_span.push_back(static_cast<int32_t>(p.ng_dead.size()));
  }
}

}  // namespace onebit::kernels
