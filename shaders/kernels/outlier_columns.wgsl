// LLM.int8's outlier columns (int8_outlier, src/gpu/quantize.ts): flags[c] = 1 when any value
// of column c has |x| >= 6 (infinities too, NaN not; src/quant/codecs/intn.ts
// findOutlierColumns). ELEMS consecutive values per invocation; the flags are atomics, so
// many invocations may set one.

struct Params {
  n: u32,       // values in this chunk
  first: u32,   // tensor index of the chunk's first value
  row_len: u32,
  _pad: u32,
}

override WG_SIZE: u32 = 64u;
const ELEMS: u32 = 64u;
const OUTLIER_THRESHOLD_BITS: u32 = 0x40c00000u; // 6.0

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i0 = ((wid.y * nwg.x + wid.x) * WG_SIZE + lid) * ELEMS;
  if (i0 >= params.n) {
    return;
  }
  var col = (params.first + i0) % params.row_len;
  for (var i = i0; i < min(i0 + ELEMS, params.n); i = i + 1u) {
    let a = src[i] & 0x7fffffffu;
    if (a >= OUTLIER_THRESHOLD_BITS && a <= 0x7f800000u) {
      atomicOr(&flags[col], 1u);
    }
    col = col + 1u;
    if (col == params.row_len) {
      col = 0u;
    }
  }
}
