// The loss of each row of logits and d loss / d logits (train/ops.ts klToTeacher,
// crossEntropy): log-softmax of the row, then
//   mode 0 (KL to the teacher's log-probabilities tlp): Σ p·(tlp − lq), d = (q − p) / count;
//   mode 1 (cross-entropy on targets): −lq[target], d = (q − onehot) / count, rows >= count
//   (the last position, which has no next token) add nothing.
// One invocation per row; the rows' losses are summed by finalize.wgsl.
struct Params { n: u32, v: u32, mode: u32, count: u32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> tlp: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = flat_id(wid, nwg, lid);
  if (t >= p.n) { return; }
  let o = t * p.v;
  let inv = 1.0 / f32(p.count);
  if (p.mode == 1u && t >= p.count) {
    for (var j = 0u; j < p.v; j++) { dlogits[o + j] = 0.0; }
    row_loss[t] = 0.0;
    return;
  }
  var mx = -3.4e38;
  for (var j = 0u; j < p.v; j++) { mx = max(mx, logits[o + j]); }
  var sum = 0.0;
  for (var j = 0u; j < p.v; j++) { sum += exp(logits[o + j] - mx); }
  let lse = mx + log(sum);
  var loss = 0.0;
  if (p.mode == 0u) {
    for (var j = 0u; j < p.v; j++) {
      let lq = logits[o + j] - lse;
      let pt = exp(tlp[o + j]);
      if (pt > 0.0) { loss += pt * (tlp[o + j] - lq); }
      dlogits[o + j] = (exp(lq) - pt) * inv;
    }
  } else {
    let tgt = targets[t];
    for (var j = 0u; j < p.v; j++) { dlogits[o + j] = exp(logits[o + j] - lse) * inv; }
    dlogits[o + tgt] -= inv;
    loss = lse - logits[o + tgt];
  }
  row_loss[t] = loss;
}
