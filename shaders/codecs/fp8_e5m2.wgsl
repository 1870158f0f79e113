// FP8 E5M2 (IEEE-like: 0x7c inf, 0x7d..0x7f NaN, largest finite 0x7b = 57344) with one f32
// scale per tensor (src/quant/codecs/float.ts FP8_E5M2). Not a block layout: quantized by
// kernels/absmax.wgsl (finite |x|), kernels/segment_params.wgsl and
// kernels/bytes_{quantize,dequantize}.wgsl with lib/fp8.wgsl (src/gpu/quantize.ts).
// Byte map (4 + n bytes): [0..4) f32 scale | [4..4+n) one code per value: s eeeee mm, bias 15.
const BLOCK_SIZE: u32 = 4u;  // values per u32 word of codes
const BLOCK_BYTES: u32 = 4u;

const FP8_MANT_BITS: u32 = 2u;
const FP8_BIAS: i32 = 15;
const FP8_MAX_CODE: u32 = 0x7bu;
const FP8_MAX_FINITE: u32 = 0x47600000u; // 57344
const FP8_NAN_CODE: u32 = 0x7eu;
const FP8_IEEE: bool = true;
