// Channel concatenation of two NHWC maps (BinaryDenseNet / MeliusNet dense blocks): per pixel,
// y = [a | b] along the channel axis. Plain copies (memcpy per pixel, the library's own vector
// code) for byte-addressable kinds; a shifted OR of words for packed bits, whose channel
// padding bits stay 0. The same code on every ISA (no per-ISA kernel: it moves bytes only).
#pragma once
#include <cstdint>

namespace onebit {

// int8 / float32 / any fixed-size element: a holds `abytes`, b `bbytes` per pixel.
// std::invalid_argument on null pointers or non-positive sizes.
void concat_bytes(const void* a, const void* b, void* y, int64_t pixels, int64_t abytes, int64_t bbytes,
                  int threads);

// Packed bits: a holds ca channels (ceil(ca/64) words per pixel), b cb; y ceil((ca+cb)/64) words
// per pixel with channel c of b at bit ca + c. Padding bits of a and b must be 0 (they then
// stay 0 in y). std::invalid_argument on null pointers or non-positive channel counts.
void concat_bits(const uint64_t* a, const uint64_t* b, uint64_t* y, int64_t pixels, int64_t ca, int64_t cb,
                 int threads);

}  // namespace onebit
