// GPTQ's lazy batch update after a block [col0, col1) (src/calibrate/gptq-gpu.ts):
//   W[:, col1:] -= Err · U[col0:col1, col1:]
// a (rows x block) · (block x later columns) product. Layouts as gptq_block.wgsl: W
// column-major in the chunk (w[j * rows + r], rows a multiple of 4, read here as vec4 of 4
// rows), err[k * rows + r], the U slab u[k * u_stride + (j - col0)] (read as vec4: the
// stride and the block are multiples of 4) with at least 3 zero columns after the last, so a
// tile's reads past `cols` are in bounds and 0.
// Each invocation: 4 rows x 4 columns in registers, no workgroup memory (register blocking
// beat shared-memory tiles by 10x on SwiftShader: docs/webgpu.md).

struct UpdateParams {
  rows: u32,
  cols: u32,
  col0: u32,
  col1: u32,
  u_stride: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

override WG_X: u32 = 8u; // row tiles per workgroup
override WG_Y: u32 = 8u; // column tiles per workgroup

@group(0) @binding(0) var<storage, read_write> w: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> err: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> u: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: UpdateParams;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let rows4 = p.rows / 4u;
  let rt = gid.x; // rows 4 * rt .. 4 * rt + 3
  let j0 = p.col1 + 4u * gid.y;
  if (rt >= rows4 || j0 >= p.cols) {
    return;
  }
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  // u_stride and the block are multiples of 4, so a tile's 4 columns are one vec4 of U.
  let du4 = (j0 - p.col0) / 4u;
  let s4 = p.u_stride / 4u;
  for (var k = 0u; k < p.col1 - p.col0; k++) {
    let e = err[k * rows4 + rt];
    let uv = u[k * s4 + du4];
    a0 += e * uv.x;
    a1 += e * uv.y;
    a2 += e * uv.z;
    a3 += e * uv.w;
  }
  w[j0 * rows4 + rt] -= a0;
  if (j0 + 1u < p.cols) {
    w[(j0 + 1u) * rows4 + rt] -= a1;
  }
  if (j0 + 2u < p.cols) {
    w[(j0 + 2u) * rows4 + rt] -= a2;
  }
  if (j0 + 3u < p.cols) {
    w[(j0 + 3u) * rows4 + rt] -= a3;
  }
}
