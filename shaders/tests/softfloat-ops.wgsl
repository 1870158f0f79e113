// Test kernel (src/gpu/codecs-extra.test.ts): out[i] = op(a[i], b[i]) for lib/softfloat.wgsl's
// exact float operations, on bit patterns. Composed after lib/rounding and lib/softfloat.

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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  fp_barrier = params.zero;
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= params.n) {
    return;
  }
  let x = bitcast<f32>(a[i]);
  let y = bitcast<f32>(b[i]);
  var r = 0u;
  switch (params.op) {
    case 0u: { r = bitcast<u32>(sf_mul(x, y)); }
    case 1u: { r = bitcast<u32>(sf_add(x, y)); }
    case 2u: { r = bitcast<u32>(sf_sub(x, y)); }
    default: { r = 0xdeadbeefu; }
  }
  out[i] = r;
}
