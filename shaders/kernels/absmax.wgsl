// Per-segment absmax for the layouts with one scale per row or per tensor (int8,
// int8_outlier, fp8_*: src/gpu/quantize.ts). A segment is seg_len consecutive values (a row;
// 0xffffffff: the whole tensor). Each invocation takes ELEMS consecutive values of the chunk
// and atomicMax-es the bits of its running max |x| into its segments' words: for
// non-negative, non-NaN floats the larger bits are the larger value, so the result does not
// depend on the order of the atomics (or on chunking), and flushing cannot touch it.
// NaN is always left out (the CPU's `|x| > max` is false for it).

struct Params {
  n: u32,       // values in this chunk
  first: u32,   // tensor index of the chunk's first value
  seg_len: u32, // values per segment
  flags: u32,   // bit 0: leave out infinities (fp8); bit 1: leave out columns with mask != 0
}

override WG_SIZE: u32 = 64u;
const ELEMS: u32 = 64u;

@group(0) @binding(0) var<storage, read> src: array<u32>;                 // f32 bits
@group(0) @binding(1) var<storage, read_write> seg_max: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> mask: array<u32>;                // per column

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i0 = ((wid.y * nwg.x + wid.x) * WG_SIZE + lid) * ELEMS;
  if (i0 >= params.n) {
    return;
  }
  let skip_inf = (params.flags & 1u) != 0u;
  let use_mask = (params.flags & 2u) != 0u;
  var seg = (params.first + i0) / params.seg_len;
  var col = (params.first + i0) % params.seg_len;
  var m = 0u;
  for (var i = i0; i < min(i0 + ELEMS, params.n); i = i + 1u) {
    if (col == params.seg_len) {
      atomicMax(&seg_max[seg], m);
      seg = seg + 1u;
      col = 0u;
      m = 0u;
    }
    let a = src[i] & 0x7fffffffu;
    let left_out = a > 0x7f800000u || (skip_inf && a == 0x7f800000u) || (use_mask && mask[col] != 0u);
    if (!left_out) {
      m = max(m, a);
    }
    col = col + 1u;
  }
  atomicMax(&seg_max[seg], m);
}
