// INT8 absmax per row (bitsandbytes' LLM.int8 vector-wise quantization; src/quant/codecs/
// intn.ts INT8). Not a block layout: quantized by kernels/absmax.wgsl (per row),
// kernels/segment_params.wgsl and kernels/bytes_{quantize,dequantize}.wgsl with
// lib/int8.wgsl (src/gpu/quantize.ts).
// Byte map (n = rows * rowLength): [0..pad4(n)) i8 codes, row-major, zero-padded |
// [pad4(n)..+4 rows) f32 absmax of each row; x = code * absmax * f32(1/127).
const BLOCK_SIZE: u32 = 4u;  // values per u32 word of codes
const BLOCK_BYTES: u32 = 4u;
