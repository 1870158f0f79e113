// A product's input rounded as llama.cpp's CPU backend rounds it (--activations ggml): to
// the weight type's vec_dot_type, bit for bit as model/llamacpp-linear.ts roundActivations
// does on the CPU (the per-product path's rounding):
//   kind 1  f16:  each value to f16 and back;  kind 2  bf16: likewise
//   kind 3  q8_0: blocks of 32, ggml-cpu's AVX quantize_row_q8_0: d = f16(amax / 127),
//           id = 127 / amax, q = nearest_int(x * id) (half to even), x' = d * q
//   kind 4  q8_K: blocks of 256, quantize_row_q8_K_ref: max = the value of largest |x|
//           (the first such), iscale = -127 / max, d = 1 / iscale,
//           q = min(127, nearest_int(iscale * x)), x' = d * q (0 where amax is 0)
// Divisions through div_rn (WGSL's / is not correctly rounded; lib/rounding.wgsl), the
// rest correctly rounded single products. One invocation per value (f16, bf16) or block.

struct RoundParams {
  units: u32, // values (kinds 1, 2) or blocks (3, 4) in the chunk
  kind: u32,
  zero: u32,  // always 0: feeds fp_barrier
  _a: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> ar_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> ar_out: array<f32>;
@group(0) @binding(2) var<uniform> ar_p: RoundParams;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  fp_barrier = ar_p.zero;
  let u = gid.x + gid.y * (65535u * WG_SIZE);
  if (u >= ar_p.units) {
    return;
  }
  if (ar_p.kind == 1u) {
    ar_out[u] = f16_bits_to_f32(f32_to_f16_bits(ar_x[u]));
    return;
  }
  if (ar_p.kind == 2u) {
    ar_out[u] = bitcast<f32>(bf16_bits_to_f32_bits(f32_to_bf16_bits(ar_x[u])));
    return;
  }
  let size = select(256u, 32u, ar_p.kind == 3u);
  let o = u * size;
  var amax = 0.0;
  var mx = 0.0;
  for (var j = 0u; j < size; j = j + 1u) {
    let a = abs(ar_x[o + j]);
    if (a > amax) {
      amax = a;
      mx = ar_x[o + j];
    }
  }
  if (ar_p.kind == 3u) {
    let d = f16_bits_to_f32(f32_to_f16_bits(div_rn(amax, 127.0)));
    let id = select(0.0, div_rn(127.0, amax), amax != 0.0);
    for (var j = 0u; j < size; j = j + 1u) {
      ar_out[o + j] = d * f32(nearest_int(no_fuse(ar_x[o + j] * id)));
    }
    return;
  }
  if (amax == 0.0) {
    for (var j = 0u; j < size; j = j + 1u) {
      ar_out[o + j] = 0.0;
    }
    return;
  }
  let iscale = div_rn(-127.0, mx);
  let d = div_rn(1.0, iscale);
  for (var j = 0u; j < size; j = j + 1u) {
    ar_out[o + j] = d * f32(min(127, nearest_int(no_fuse(iscale * ar_x[o + j]))));
  }
}
