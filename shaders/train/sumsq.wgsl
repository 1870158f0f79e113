// Σ g² of one gradient tensor into partials[slot]: one workgroup (WG_SIZE a power of two),
// each invocation a strided share, then a tree in workgroup memory.
struct Params { len: u32, slot: u32, _u0: u32, _u1: u32 }

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> acc: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.len; i += 256u) { s += g[i] * g[i]; }
  acc[lid] = s;
  workgroupBarrier();
  for (var half = 128u; half > 0u; half = half / 2u) {
    if (lid < half) { acc[lid] += acc[lid + half]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[p.slot] = acc[0]; }
}
