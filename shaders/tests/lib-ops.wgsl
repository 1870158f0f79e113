// Test kernel (src/gpu/wgsl-lib.test.ts): applies one lib/ function to every element,
// so the tests can check it against the CPU on many inputs. Composed after lib/rounding,
// lib/f16 and lib/bf16.

struct Params {
  n: u32,
  op: u32,
  zero: u32,
  _pad: u32,
}

@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;

const OP_DIV_RN: u32 = 0u;
const OP_ROUNDF: u32 = 1u;
const OP_NEAREST_INT: u32 = 2u;
const OP_F32_TO_F16: u32 = 3u;
const OP_F16_TO_F32: u32 = 4u;
const OP_F32_TO_BF16: u32 = 5u;
const OP_C_INT8: u32 = 6u;
const OP_FLT_LT: u32 = 7u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  fp_barrier = params.zero;
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= params.n) {
    return;
  }
  let x = a[i];
  let y = b[i];
  var r = 0u;
  switch (params.op) {
    case OP_DIV_RN: { r = div_rn_bits(x, y); }
    case OP_ROUNDF: { r = bitcast<u32>(roundf_i(bitcast<f32>(x))); }
    case OP_NEAREST_INT: { r = bitcast<u32>(nearest_int(bitcast<f32>(x))); }
    case OP_F32_TO_F16: { r = f32_to_f16_bits(bitcast<f32>(x)); }
    case OP_F16_TO_F32: { r = f16_bits_to_f32_bits(x); }
    case OP_F32_TO_BF16: { r = f32_to_bf16_bits(bitcast<f32>(x)); }
    case OP_C_INT8: { r = bitcast<u32>(c_int8(bitcast<f32>(x))); }
    case OP_FLT_LT: { r = select(0u, 1u, flt_lt(x, y)); }
    default: { r = 0xdeadbeefu; }
  }
  out[i] = r;
}
