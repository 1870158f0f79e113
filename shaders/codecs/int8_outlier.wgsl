// INT8_OUTLIER (LLM.int8 with its outlier decomposition; src/quant/codecs/intn.ts
// INT8_OUTLIER): INT8 per row (codecs/int8.wgsl, lib/int8.wgsl) without the columns holding
// any |x| >= 6, which are kept as f16 records. Not a block layout: kernels/outlier_columns.wgsl
// finds the columns, then kernels/absmax.wgsl (masked), segment_params.wgsl and
// bytes_{quantize,dequantize}.wgsl (src/gpu/quantize.ts).
// Byte map: the INT8 tensor (outlier columns hold code 0 and are left out of the absmax),
// then one record per outlier column, ascending: u32 column | rows x f16 | zero pad to 4.
const BLOCK_SIZE: u32 = 4u;  // values per u32 word of codes
const BLOCK_BYTES: u32 = 4u;
