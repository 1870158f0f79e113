// FP8 E4M3 ("fn": no infinities, 0x7f / 0xff NaN, largest finite 0x7e = 448) with one f32
// scale per tensor (src/quant/codecs/float.ts FP8_E4M3). Not a block layout: quantized by
// kernels/absmax.wgsl (finite |x|), kernels/segment_params.wgsl and
// kernels/bytes_{quantize,dequantize}.wgsl with lib/fp8.wgsl (src/gpu/quantize.ts).
// Byte map (4 + n bytes): [0..4) f32 scale | [4..4+n) one code per value: s eeee mmm, bias 7.
const BLOCK_SIZE: u32 = 4u;  // values per u32 word of codes
const BLOCK_BYTES: u32 = 4u;

const FP8_MANT_BITS: u32 = 3u;
const FP8_BIAS: i32 = 7;
const FP8_MAX_CODE: u32 = 0x7eu;
const FP8_MAX_FINITE: u32 = 0x43e00000u; // 448
const FP8_NAN_CODE: u32 = 0x7fu;
const FP8_IEEE: bool = false;
