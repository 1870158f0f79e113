// One invocation: stats = [mean loss, global gradient norm, clip factor] (train/optim.ts
// clipGradNorm: clip / norm when the norm exceeds clip and is finite, else 1).
struct Params { rows: u32, slots: u32, count: u32, _u0: u32, clip: f32, _p0: f32, _p1: f32, _p2: f32 }

@group(0) @binding(0) var<storage, read> row_loss: array<f32>;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(1)
fn main() {
  var loss = 0.0;
  for (var t = 0u; t < p.rows; t++) { loss += row_loss[t]; }
  var sq = 0.0;
  for (var i = 0u; i < p.slots; i++) { sq += partials[i]; }
  let norm = sqrt(sq);
  stats[0] = loss / f32(p.count);
  stats[1] = norm;
  // norm - norm is 0 only for a finite norm.
  stats[2] = select(1.0, p.clip / norm, norm > p.clip && norm - norm == 0.0);
}
