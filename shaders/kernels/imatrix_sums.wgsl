// llama-imatrix's statistic on the GPU, on the resident forward pass (src/model/gpu-stats.ts):
// per input column j of a product's `rows` input rows (row-major, `cols` f32 each),
//   acc[out + j] += x[t, j] * x[t, j]   for t = 0 .. rows - 1, in that order, in f32,
// the order collect_imatrix (and calibrate/imatrix.ts accumulateSquares) sums them in, so
// equal inputs give equal sums. One invocation per column: consecutive columns read
// consecutive words.

struct SumsParams {
  rows: u32,
  cols: u32,
  out: u32, // this weight's first word in acc
  pad: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<uniform> p: SumsParams;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  if (j >= p.cols) {
    return;
  }
  var a = acc[p.out + j];
  for (var t = 0u; t < p.rows; t++) {
    let v = x[t * p.cols + j];
    a = a + v * v;
  }
  acc[p.out + j] = a;
}
