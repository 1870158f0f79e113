// The gated FFN's activation: out = act(gate) * up over n rows of `width`, gate and up
// read with their own stride and offset (phi3's ffn_up holds gate then up in one row).
// kind 0: SwiGLU, silu(g) = g / (1 + exp(-g)) (ggml_swiglu_split). kind 1: GeGLU as
// ggml-cpu computes it with GGML_GELU_FP16: g rounded to f16 (lib/f16.wgsl, bit-exact),
// GELU looked up in the host's table of all 65536 f16 inputs (blocks.ts geluF16Table);
// g <= -10 gives 0, g >= 10 gives g.

struct ActParams {
  n: u32,
  width: u32,
  kind: u32,
  g_stride: u32,
  g_off: u32,
  u_stride: u32,
  u_off: u32,
  _a: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> ac_g: array<f32>;
@group(0) @binding(1) var<storage, read> ac_u: array<f32>;
@group(0) @binding(2) var<storage, read> ac_gelu: array<f32>;
@group(0) @binding(3) var<storage, read_write> ac_out: array<f32>;
@group(0) @binding(4) var<uniform> ac_p: ActParams;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * (65535u * WG_SIZE);
  if (idx >= ac_p.n * ac_p.width) {
    return;
  }
  let t = idx / ac_p.width;
  let j = idx % ac_p.width;
  let g = ac_g[t * ac_p.g_stride + ac_p.g_off + j];
  let u = ac_u[t * ac_p.u_stride + ac_p.u_off + j];
  var a: f32;
  if (ac_p.kind == 0u) {
    a = (g / (1.0 + exp(-g))) * u;
  } else {
    var ge = ac_gelu[f32_to_f16_bits(g)];
    if (g <= -10.0) {
      ge = 0.0;
    }
    if (g >= 10.0) {
      ge = g;
    }
    a = ge * u;
  }
  ac_out[idx] = a;
}
