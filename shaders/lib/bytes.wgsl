// Block staging and byte access over u32 words (WGSL has no 8- or 16-bit storage).
//
// Scheme: one invocation owns a GROUP of GROUP_BLOCKS consecutive blocks whose total size
// is a whole number of u32 words (GROUP_BLOCKS * BLOCK_BYTES % 4 == 0): 1 block for sizes
// divisible by 4, 2 for sizes = 2 mod 4 (18, 22, 34, 54, 66, 110, 210 bytes), 4 for odd
// sizes (17). The invocation assembles the group's bytes in the private array `grp`, then
// writes whole words to storage: no two invocations touch one word, so no atomics and no
// read-modify-write of storage (ggml-webgpu's set_rows_quant.wgsl pairs blocks the same
// way and falls back to atomic compare-exchange merges when it cannot: ggml-org/ggml
// src/ggml-webgpu/wgsl-shaders/set_rows_quant.wgsl, PAIR_BLOCKS). Dequantizing reads a
// group's words into `grp` the same way. src/gpu/quantize.ts pads the tensor to whole
// groups and uses the same GROUP_BLOCKS formula.
//
// The codec file defines BLOCK_SIZE (values per block) and BLOCK_BYTES; WGSL module-scope
// declarations may come in any order, so this file can use them.
//
// Codec contract:
//   fn quantize_block(base: u32)   reads vals[0..BLOCK_SIZE) (f32 bits), writes the
//                                  block's BLOCK_BYTES bytes at byte `base` of grp.
//   fn dequantize_block(base: u32) reads the block at byte `base` of grp, writes vals.
//   has_qw, qw, qw_sigma2          set by the quantize kernel before quantize_block: with
//                                  importance weights (llama.cpp's imatrix, one per column)
//                                  has_qw is true, qw[i] the weight of value i's column and
//                                  qw_sigma2 the row's sum(x^2) / n (the legacy *_impl
//                                  functions' sigma2); codecs with a *_impl path use them.
//   block_to_cpu                   quantize_block may set it (the kernel clears it before
//                                  each block) when this GPU cannot reproduce the CPU codec
//                                  for this block (K-quants: f32 subnormals, which devices
//                                  may flush); src/gpu/quantize.ts re-encodes such blocks
//                                  on the CPU and reports them.

const GROUP_BLOCKS: u32 = select(select(4u, 2u, BLOCK_BYTES % 4u == 2u), 1u, BLOCK_BYTES % 4u == 0u);
const GROUP_BYTES: u32 = GROUP_BLOCKS * BLOCK_BYTES;
const GROUP_WORDS: u32 = GROUP_BYTES / 4u;

// The group's bytes, little-endian within each word (as the GGUF file and the CPU have it).
var<private> grp: array<u32, GROUP_WORDS>;
// One block's values as f32 bit patterns (bits, so subnormals and NaN payloads survive).
var<private> vals: array<u32, BLOCK_SIZE>;
// Set by quantize_block: this block must be encoded on the CPU (see the contract above).
var<private> block_to_cpu: bool;
// Importance weights of this block's columns (see the contract above).
var<private> has_qw: bool;
var<private> qw: array<f32, BLOCK_SIZE>;
var<private> qw_sigma2: f32;

fn val(i: u32) -> f32 {
  return bitcast<f32>(vals[i]);
}

fn set_val(i: u32, x: f32) {
  vals[i] = bitcast<u32>(x);
}

fn ld_u8(off: u32) -> u32 {
  return (grp[off >> 2u] >> ((off & 3u) * 8u)) & 0xffu;
}

// Little-endian u16 at any byte offset (it may straddle two words).
fn ld_u16(off: u32) -> u32 {
  return ld_u8(off) | (ld_u8(off + 1u) << 8u);
}

// Little-endian u32 at any byte offset: a funnel shift of the two words it touches.
fn ld_u32(off: u32) -> u32 {
  let i = off >> 2u;
  let sh = (off & 3u) * 8u;
  if (sh == 0u) {
    return grp[i];
  }
  return (grp[i] >> sh) | (grp[i + 1u] << (32u - sh));
}

fn st_u8(off: u32, v: u32) {
  let i = off >> 2u;
  let sh = (off & 3u) * 8u;
  grp[i] = (grp[i] & ~(0xffu << sh)) | ((v & 0xffu) << sh);
}

fn st_u16(off: u32, v: u32) {
  st_u8(off, v);
  st_u8(off + 1u, v >> 8u);
}

fn st_u32(off: u32, v: u32) {
  let i = off >> 2u;
  let sh = (off & 3u) * 8u;
  if (sh == 0u) {
    grp[i] = v;
    return;
  }
  grp[i] = (grp[i] & ~(0xffffffffu << sh)) | (v << sh);
  grp[i + 1u] = (grp[i + 1u] & ~(0xffffffffu >> (32u - sh))) | (v >> (32u - sh));
}
