// NF4_DQ: NF4 with double quantization (bitsandbytes quantize_4bit, compress_statistics;
// src/quant/codecs/nf4.ts NF4_DQ). Not a block layout (src/gpu/quantize.ts): the codes and
// absmax come from the NF4 block codec (codecs/nf4.wgsl); the absmax values are then
// quantized to 8 bits by kernels/dq_absmax.wgsl, after their mean (the offset, summed in f64)
// is taken on the CPU.
// Byte map (B blocks of 64): [0..32B) the blocks' codes, as NF4's | [32B..+pad4(B)) u8 code of
// each absmax in the signed dynamic map, zero-padded | f32 scale of each group of 256 blocks
// (max |absmax - offset|) | f32 offset; absmax = MAP[u8] * scale + offset (f32).
const BLOCK_SIZE: u32 = 64u;
const BLOCK_BYTES: u32 = 36u; // the NF4 block the codes are made in: f32 absmax + 32 bytes

const DQ_GROUP_BLOCKS: u32 = 256u;
const DQ_MIN_SCALE: u32 = 0x006ce3eeu; // 1e-38f: bitsandbytes clamps before 1 / scale
