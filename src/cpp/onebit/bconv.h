// Binary direct convolution and binary fully connected layers (packed bits in, fused output
// stage out). Raw pointers only; the dispatcher validates, picks the ISA kernel and threads.
//
// Contract (docs/format.md): input (N,H,W,W64) uint64 NHWC packed along channels (bit 1 = -1),
// weights (Cout,KH,KW,W64) packed along Cin, padding bits 0. Spatial padding: `pad` rows/columns
// before the input (top, left) and `pad_end` after it (bottom, right; Keras "same" puts the odd
// one there). Its value (`pad_value`):
//  - 0, TRUE ZERO: taps outside the input are skipped, so with T in-bounds taps
//      y = T*Cin - 2 * sum_{in-bounds taps, words} popcount(x XOR w)        in [-T*Cin, T*Cin];
//  - 1, ONE-PADDING (Larq pad_values=1, LCE's default): a padded tap holds +1 in every channel,
//    i.e. input bits 0, so it adds Cin - 2*popcount(w) like a real input pixel of all +1 and
//      y = K - 2 * sum_{all taps, words} popcount(x' XOR w)                in [-K, K]
//    with x' the input framed by zero words. The SIMD kernels run exactly that (the dispatcher
//    frames the input, then calls them unpadded); the scalar reference reads a zero word per
//    out-of-bounds tap.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "onebit/isa.h"
#include "onebit/output.h"

namespace onebit {

struct BConvShape {
  int64_t n = 1, h = 1, w = 1, cin = 1, cout = 1;
  int64_t kh = 1, kw = 1, stride = 1;
  int64_t pad = 0, pad_end = 0;  // before (top, left) and after (bottom, right) the input
  int pad_value = 0;             // 0: true zero, 1: +1 (one-padding)
  int64_t words() const { return (cin + 63) / 64; }            // W64
  int64_t out_h() const { return (h + pad + pad_end - kh) / stride + 1; }
  int64_t out_w() const { return (w + pad + pad_end - kw) / stride + 1; }
  int64_t k_bits() const { return kh * kw * cin; }              // K: |y| <= K
  int64_t out_words() const { return (cout + 63) / 64; }
};

// Accumulator width the engine uses for a binary dot product over K bits: the scalar kernel
// accumulates in int16 when K <= 32767 (|y| <= K fits), int32 otherwise.
inline int accumulator_bits(int64_t k_bits) { return k_bits <= 32767 ? 16 : 32; }

// Weights re-laid out once for one ISA's kernel (what the kernel would otherwise redo on every
// call): created by prepare_bconv_weights, immutable afterwards, shareable across threads.
struct PreparedWeights {
  Isa isa = Isa::scalar;
  int64_t cout = 0, kh = 0, kw = 0, cin = 0;
  std::shared_ptr<uint64_t> words;  // 64-byte aligned, ISA-specific layout
  size_t nwords = 0;
  std::vector<int32_t> pcw;         // per-tap weight popcounts (AVX2 padding correction)
  // Pruned layer (prepared with a weight_mask; docs/kernels.md "Masked (pruned) binary layers").
  // The scalar masked kernel reads `words` (packed layout) and `mask`; the AVX2 one reads the
  // list layout below (then `words` and `pcw` are empty).
  bool masked = false;
  std::shared_ptr<uint64_t> mask;   // scalar: copy of the packed mask (Cout,KH,KW,W64)
  size_t nmask = 0;
  // AVX2 list layout. Output channels in 8-channel blocks; a group is 1 block or 2 adjacent
  // blocks (b even) computed together: groups = [first block, blocks] per group, block_group =
  // group of each block. Per group, entries (kh, kw, wd) with some kept weight in the group, each
  // stored as (kh << 32) | (kw*W64 + wd), sorted by kh: "full" entries (every
  // channel keeps every real bit of the word: no AND needed) and "partial" ones (AND with the
  // mask). Entries of group g with kernel row kh: [rows_full[g*(KH+1) + kh],
  // rows_full[g*(KH+1) + kh + 1]) (likewise rows_part).
  std::vector<int32_t> groups, block_group;
  std::vector<int64_t> ent_full, ent_part;
  std::vector<int64_t> rows_full, rows_part;
  // Per full entry and block of its group: [lo 8 | hi 8] nibble-split weight words; per partial
  // entry and block: [w lo 8 | w hi 8 | m lo 8 | m hi 8]. Group g's first entry at wfull_at[g]
  // (wpart_at[g]) words.
  std::shared_ptr<uint64_t> wfull, wpart;
  std::vector<int64_t> wfull_at, wpart_at;
  // false for 1x1 kernels: the words above are stored raw ([w 8] / [w 8 | m 8] per block) and
  // split in registers (half the bytes to stream: dense layers at batch 1 are memory-bound).
  bool split_words = true;
  // Per-channel sums over taps as 2-D prefix sums, [blocks][(KH+1)*(KW+1)][8]: the sum of
  // channel j over taps [kh0,kh1) x [kw0,kw1) is S[kh1][kw1] - S[kh0][kw1] - S[kh1][kw0] + S[kh0][kw0].
  // dk_prefix: kept weights - 2 * weight popcount (canonical: popcount(w) = popcount(w AND m));
  // pw_prefix: weight popcount (what the zero words of out-of-bounds taps add to the sums).
  std::vector<int32_t> dk_prefix, pw_prefix;
  // NEON group layout (`words` and `mask` stay packed; docs/kernels.md, ARM NEON kernels).
  // Channels whose mask keeps no weight are in no group (y = 0). The others, per 64-channel span
  // (tasks split Cout at multiples of 64), in order, form groups of the kernel's channel count
  // (8 on aarch64, 4 on armv7; then 4 and 1 for the span's last channels) sharing each input
  // vector. Span sp: groups [ng_span[sp], ng_span[sp+1]); its pruned channels
  // ng_dead[ng_dead_span[sp] .. ng_dead_span[sp+1]). Group g: channels ng_chan[ng_first[g] ..
  // ng_first[g+1]). Per group and kernel row kh, segments ng_seg[3*i .. 3*i+2] = {begin, end,
  // full} for i in [ng_rows[g*KH + kh], ng_rows[g*KH + kh + 1]): maximal runs [begin, end) of the
  // row's words (index kw*W64 + wd) where some channel of the group keeps a weight; full = every
  // channel keeps every real bit of every word of the run (no AND with the mask). Words outside
  // every segment are pruned in the whole group and never read. ng_kept: kept weights per
  // (channel, tap).
  std::vector<int32_t> ng_span, ng_dead_span, ng_dead, ng_first, ng_chan, ng_rows, ng_seg, ng_kept;
};

struct BConvArgs {
  const uint64_t* x = nullptr;            // (N,H,W,W64)
  const uint64_t* w = nullptr;            // (Cout,KH,KW,W64)
  // Optional pruning mask (Cout,KH,KW,W64): bit 1 = weight kept, bit 0 = weight pruned (value 0).
  // Canonical: channel padding bits 0 and no weight bit set where the mask bit is 0. Then
  //   y = L_T - 2 * sum_{in-bounds taps, words} popcount((x XOR w) AND m),
  // L_T = kept weights of the output channel at the in-bounds taps. Not with `prepared` (a
  // prepared layer carries its own mask).
  const uint64_t* weight_mask = nullptr;
  // Optional: weights already prepared for the ISA of the call (then `w` is not read).
  const PreparedWeights* prepared = nullptr;
  BConvShape s;
  OutputStage stage;
  void* out = nullptr;  // int32 (N,OH,OW,Cout) | uint64 (N,OH,OW,ceil(Cout/64)) | int8 | float32
};

// Validates geometry and stage parameters (std::invalid_argument with a clear message),
// then runs the kernel of `isa` on up to `threads` threads (<= 0: default).
void bconv2d(const BConvArgs& args, Isa isa, int threads);

// Re-lays out packed weights (Cout,KH,KW,W64) for `isa`'s conv kernel (std::invalid_argument
// on bad sizes, a non-canonical mask or an unsupported ISA). Pass the result as
// BConvArgs::prepared. With `weight_mask` the result carries the mask (pruned layer).
std::shared_ptr<const PreparedWeights> prepare_bconv_weights(const uint64_t* w, int64_t cout, int64_t kh,
                                                             int64_t kw, int64_t cin, Isa isa, int threads,
                                                             const uint64_t* weight_mask = nullptr);

// Checks a pruning mask against its weights (both (Cout, taps, W64) packed along `cin`):
// channel padding bits of the mask 0, and no weight bit set under a pruned (0) mask bit.
// std::invalid_argument naming the first offending (channel, tap, word) otherwise.
void check_weight_mask(const uint64_t* w, const uint64_t* mask, int64_t cout, int64_t taps, int64_t cin);

// Binary fully connected: x (N,W64), w (Cout,W64), `in_features` = Cin. Same output stages;
// implemented as a 1x1 convolution over a 1x1 image.
void bdense(const uint64_t* x, const uint64_t* w, int64_t n, int64_t in_features, int64_t cout,
            const OutputStage& stage, void* out, Isa isa, int threads,
            const PreparedWeights* prepared = nullptr, const uint64_t* weight_mask = nullptr);

// Runs an L1-resident XOR + popcount + add loop for about `seconds` on one thread and returns
// the achieved bit-MACs per second (the peak the benchmarks compare against).
// `method` picks the popcount implementation timed ("" = the one the ISA's conv kernel uses):
// scalar: "builtin"; avx2: "split" (pshufb LUT on nibble-pre-split operands, as the AVX2
// conv), "lut" (classic pshufb nibble LUT), "popcnt" (scalar 64-bit POPCNT); avx512: "vpopcntq";
// neon: "vcnt" (vcntq_u8 + vpadalq_u8 into 16-bit lanes, as the NEON conv).
double popcount_peak(Isa isa, double seconds, const std::string& method = "");
// One run of the loop popcount_peak times for `isa` (its default method): `iters` passes over
// `words` words (>= 0, a multiple of 4) of a and b, returning the total popcount the loop
// computed (scalar and neon: iters * sum popcount(a[i] XOR b[i]); x86 loops follow their conv
// kernel's own access pattern). std::invalid_argument on bad sizes or an unsupported ISA.
uint64_t popcount_loop(Isa isa, const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters);

namespace kernels {
// Per-ISA entry points (kernels/bconv_<isa>.cpp). Arguments are already validated.
void bconv_scalar(const BConvArgs& a, int threads);
void bconv_avx2(const BConvArgs& a, int threads);
void bconv_avx512(const BConvArgs& a, int threads);
void bconv_neon(const BConvArgs& a, int threads);
void prepare_weights_avx2(const uint64_t* w, const BConvShape& s, PreparedWeights& p, int threads);
void prepare_weights_avx512(const uint64_t* w, const BConvShape& s, PreparedWeights& p, int threads);
// Masked (pruned) layers: a.weight_mask (scalar: with a.w) or a.prepared->masked.
void bconv_masked_scalar(const BConvArgs& a, int threads);
// AVX2 list kernel, also for ISA avx512 with a mask; needs a.prepared (built by the dispatcher
// for unprepared calls).
void bconv_masked_avx2(const BConvArgs& a, int threads);
// NEON masked kernel: reads a.prepared's packed weights and mask and its group layout
// (`ng_*`, built by prepare_masked_groups; the dispatcher builds it for unprepared calls).
void bconv_masked_neon(const BConvArgs& a, int threads);
// Channels per group of the NEON masked kernel (8 on aarch64, 4 on 32-bit ARM).
int masked_group_channels_neon();
// Builds the NEON group layout (PreparedWeights' ng_* fields) of a canonical mask for groups of
// `nc` channels. Core code without ISA flags (bconv_masked.cpp).
void prepare_masked_groups(const uint64_t* mask, const BConvShape& s, int nc, PreparedWeights& p);
// Builds the AVX2 list layout (PreparedWeights' list fields) of canonical weights and mask.
// Core code without ISA flags (bconv_masked.cpp).
void prepare_masked_list(const uint64_t* w, const uint64_t* mask, const BConvShape& s, PreparedWeights& p,
                         int threads);
// 64-byte aligned uninitialised storage for `n` words, freed by the shared_ptr.
std::shared_ptr<uint64_t> aligned_words(size_t n);
// One timed loop of `iters` iterations over `words` words of a and b (L1 resident);
// returns the total popcount so the work cannot be optimised away.
uint64_t popcount_loop_scalar(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters);
uint64_t popcount_loop_avx2(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters);
uint64_t popcount_loop_avx2_lut(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters);
uint64_t popcount_loop_avx2_popcnt(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters);
uint64_t popcount_loop_neon(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters);
uint64_t popcount_loop_avx512(const uint64_t* a, const uint64_t* b, int64_t words, int64_t iters);
}  // namespace kernels

}  // namespace onebit
