// RoPE of n rows of `heads` heads: dst = rotate(src) by the table's angles (cs[t][i] = cos,
// sin of pair i at position t, from model/families/blocks.ts RopeTable, rope_freqs
// included), or with inverse the transpose added into dst (the backward). Pairs adjacent
// (NORM) or halves (NEOX); values past the rotated pairs pass through. One invocation per value.
struct Params { n: u32, heads: u32, head_dim: u32, pairs: u32, neox: u32, inverse: u32, _u0: u32, _u1: u32 }

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = flat_id(wid, nwg, lid);
  if (id >= p.n * p.heads * p.head_dim) { return; }
  let e = id % p.head_dim;
  let t = id / (p.heads * p.head_dim);
  let o = id - e;
  var y = src[id];
  if (e < 2u * p.pairs) {
    // Pair i, and whether this value is the pair's first (x0) or second (x1).
    let i = select(e / 2u, e % p.pairs, p.neox != 0u);
    let first = select(e % 2u == 0u, e < p.pairs, p.neox != 0u);
    let i0 = o + select(2u * i, i, p.neox != 0u);
    let i1 = select(i0 + 1u, i0 + p.pairs, p.neox != 0u);
    let c = cs[(t * p.pairs + i) * 2u];
    let s = select(1.0, -1.0, p.inverse != 0u) * cs[(t * p.pairs + i) * 2u + 1u];
    y = select(src[i0] * s + src[i1] * c, src[i0] * c - src[i1] * s, first);
  }
  if (p.inverse != 0u) { dst[id] += y; } else { dst[id] = y; }
}
