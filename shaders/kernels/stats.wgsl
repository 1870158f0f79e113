// Error statistics of an approximation b (e.g. dequantized) against a reference a, with
// a histogram of the error e = b - a. Only per-workgroup partial sums and the bins go back
// to the CPU, which adds the partials in f64.
//
// Accuracy: each invocation sums ELEMS_PER_THREAD terms in f32, then the workgroup adds
// its WG_SIZE partials pairwise (tree): relative error below (ELEMS_PER_THREAD +
// log2(WG_SIZE)) * 2^-24 of the sum of |terms| per workgroup, and the CPU's f64 sum of the
// workgroups adds nothing measurable. There are no f32 atomics in WGSL, hence this shape.
// Pairs where a or b is not finite are counted (nonfinite) and left out of every sum and
// of the histogram.
//
// Grid-stride: a workgroup runs tile after tile (a tile: WG_SIZE * ELEMS_PER_THREAD
// elements), writing each tile's partials as one workgroup per tile would (the same f32
// values, so the same sums), while its histogram stays in workgroup memory across all its
// tiles and reaches the global bins once: global atomics per bin fall from one per tile to
// one per workgroup. The maximum |error| and the non-finite count also go to `totals` (u32
// atomics: non-negative f32 bits order as u32), so a caller needing only those (the
// compare's first pass) reads back 8 bytes instead of the partials.

struct Params {
  n: u32,             // elements in this chunk
  bins: u32,          // histogram bins (<= MAX_BINS); 0: no histogram
  lo: f32,            // histogram range [lo, lo + bins / scale)
  scale: f32,         // bins / (hi - lo)
}

override WG_SIZE: u32 = 64u;        // a power of two
override ELEMS_PER_THREAD: u32 = 8u;
const MAX_BINS: u32 = 1024u;
// Partials per workgroup, in this order.
const P_SUM_SQ_ERR: u32 = 0u;
const P_SUM_SQ_REF: u32 = 1u;
const P_SUM_SQ_APPROX: u32 = 2u;
const P_SUM_ABS_ERR: u32 = 3u;
const P_DOT: u32 = 4u;
const P_MAX_ABS_ERR: u32 = 5u;
const P_NONFINITE: u32 = 6u;
const P_STRIDE: u32 = 8u;

@group(0) @binding(0) var<storage, read> ref_vals: array<f32>;
@group(0) @binding(1) var<storage, read> approx_vals: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
// bins regular bins, then [bins] = below lo, [bins + 1] = at or above hi. Accumulates
// across chunks: the host clears it once.
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(4) var<uniform> params: Params;
// [0]: max |error| as f32 bits, [1]: non-finite pairs. Accumulate across chunks.
@group(0) @binding(5) var<storage, read_write> totals: array<atomic<u32>, 2>;

var<workgroup> red_a: array<vec4<f32>, WG_SIZE>; // sum sq err, sum sq ref, sum sq approx, sum abs err
var<workgroup> red_b: array<vec4<f32>, WG_SIZE>; // dot, max abs err, nonfinite count, unused
var<workgroup> local_hist: array<atomic<u32>, MAX_BINS + 2u>;

fn finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * nwg.x + wid.x;
  let n_wgs = nwg.x * nwg.y;
  let tile_elems = WG_SIZE * ELEMS_PER_THREAD;
  let n_tiles = (params.n + tile_elems - 1u) / tile_elems;
  if (wg >= n_tiles) {
    return; // spare workgroups (uniform: the whole workgroup leaves)
  }
  let nb = params.bins + 2u;
  let use_hist = params.bins > 0u;
  if (use_hist) {
    for (var i = lid; i < nb; i = i + WG_SIZE) {
      atomicStore(&local_hist[i], 0u);
    }
  }
  workgroupBarrier();

  var wg_max = 0.0;
  var wg_nonfinite = 0.0;
  for (var tile = wg; tile < n_tiles; tile = tile + n_wgs) {
    var sa = vec4<f32>(0.0);
    var sb = vec4<f32>(0.0);
    let base = tile * tile_elems + lid;
    for (var k = 0u; k < ELEMS_PER_THREAD; k = k + 1u) {
      let i = base + k * WG_SIZE;
      if (i < params.n) {
        let a = ref_vals[i];
        let b = approx_vals[i];
        if (finite(a) && finite(b)) {
          let e = b - a;
          let ae = abs(e);
          sa = sa + vec4<f32>(e * e, a * a, b * b, ae);
          sb = vec4<f32>(sb.x + a * b, max(sb.y, ae), sb.z, 0.0);
          if (use_hist) {
            let t = (e - params.lo) * params.scale;
            var bin: u32;
            if (t < 0.0) {
              bin = params.bins;
            } else if (t >= f32(params.bins)) {
              bin = params.bins + 1u;
            } else {
              bin = min(u32(t), params.bins - 1u);
            }
            atomicAdd(&local_hist[bin], 1u);
          }
        } else {
          sb.z = sb.z + 1.0;
        }
      }
    }
    red_a[lid] = sa;
    red_b[lid] = sb;
    workgroupBarrier();
    for (var s = WG_SIZE / 2u; s > 0u; s = s >> 1u) {
      if (lid < s) {
        red_a[lid] = red_a[lid] + red_a[lid + s];
        let o = red_b[lid + s];
        let m = red_b[lid];
        red_b[lid] = vec4<f32>(m.x + o.x, max(m.y, o.y), m.z + o.z, 0.0);
      }
      workgroupBarrier();
    }
    if (lid == 0u) {
      let p = tile * P_STRIDE;
      let ra = red_a[0];
      let rb = red_b[0];
      partials[p + P_SUM_SQ_ERR] = ra.x;
      partials[p + P_SUM_SQ_REF] = ra.y;
      partials[p + P_SUM_SQ_APPROX] = ra.z;
      partials[p + P_SUM_ABS_ERR] = ra.w;
      partials[p + P_DOT] = rb.x;
      partials[p + P_MAX_ABS_ERR] = rb.y;
      partials[p + P_NONFINITE] = rb.z;
      partials[p + 7u] = 0.0;
      wg_max = max(wg_max, rb.y);
      wg_nonfinite = wg_nonfinite + rb.z;
    }
    workgroupBarrier(); // red_a / red_b are rewritten by the next tile
  }
  if (lid == 0u) {
    atomicMax(&totals[0], bitcast<u32>(wg_max));
    if (wg_nonfinite > 0.0) {
      atomicAdd(&totals[1], u32(wg_nonfinite));
    }
  }
  if (use_hist) {
    workgroupBarrier();
    for (var i = lid; i < nb; i = i + WG_SIZE) {
      let c = atomicLoad(&local_hist[i]);
      if (c > 0u) {
        atomicAdd(&hist[i], c);
      }
    }
  }
}
