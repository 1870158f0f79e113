// GPTQ's Hessian sum, XᵀX over a chunk of tokens, into a band of its rows
// (src/calibrate/gptq-gpu.ts; GPTQ.add_batch in IST-DASLab/gptq gptq.py):
//   h[i - row0, j] += Σ_t x[t, i] · x[t, j]   for i in [row0, row0 + band_rows)
// X is row-major with a row stride `stride` (cols rounded up to 4, zero padded), H's band
// likewise; the caller scales by 2/N. Accumulates, so token chunks are dispatched one
// after another into the same band. Each invocation: 4 x 4 outputs in registers.
// H is symmetric: only tiles that touch the upper triangle (j >= i) are summed; the caller
// mirrors the lower one from it (h[i, j] and h[j, i] are the same products in the same
// order, so the mirrored values are those a full sum gives). Lower tiles are left as they are.

struct HessianParams {
  tokens: u32,    // tokens in this chunk
  stride: u32,    // floats per row of X and of H (a multiple of 4)
  row0: u32,      // the band's first row of H (a multiple of 4)
  band_rows: u32, // rows in the band
}

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
/** false: every tile (the former kernel, kept for bench/gptq.ts's comparison). */
override UPPER_ONLY: bool = true;

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> h: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: HessianParams;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s4 = p.stride / 4u;
  let jt = gid.x;       // columns 4 * jt .. 4 * jt + 3
  let il = 4u * gid.y;  // band rows il .. il + 3
  if (jt >= s4 || il >= p.band_rows) {
    return;
  }
  if (UPPER_ONLY && 4u * jt + 3u < p.row0 + il) {
    return; // wholly below the diagonal
  }
  let it = (p.row0 + il) / 4u;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var t = 0u; t < p.tokens; t++) {
    let xi = x[t * s4 + it];
    let xj = x[t * s4 + jt];
    a0 += xi.x * xj;
    a1 += xi.y * xj;
    a2 += xi.z * xj;
    a3 += xi.w * xj;
  }
  h[il * s4 + jt] += a0;
  if (il + 1u < p.band_rows) {
    h[(il + 1u) * s4 + jt] += a1;
  }
  if (il + 2u < p.band_rows) {
    h[(il + 2u) * s4 + jt] += a2;
  }
  if (il + 3u < p.band_rows) {
    h[(il + 3u) * s4 + jt] += a3;
  }
}
