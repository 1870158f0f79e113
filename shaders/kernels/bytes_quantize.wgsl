// Quantize to one byte per value (int8, int8_outlier, fp8_*: src/gpu/quantize.ts): the codec's
// layout_encode(x, seg_param[segment]). One invocation per u32 word of codes (4 values), so
// no word is shared. int8_outlier (flags bit 0): a value of a column with mask[c] = k + 1 is
// outlier record k's: its code is 0, and its f16 bits are OR-ed into the record (words of 2
// rows; the host wrote each record's column word and zeros before).

struct Params {
  n: u32,         // values in this chunk (the last word may be partial)
  first: u32,     // tensor index of the chunk's first value (a multiple of 4)
  seg_len: u32,   // values per segment (0xffffffff: one segment)
  flags: u32,     // bit 0: outlier columns (mask, records)
  rec_words: u32, // u32 words per outlier record: 1 + ceil(rows / 2)
  zero: u32,      // always 0: feeds fp_barrier (lib/rounding.wgsl)
  _pad0: u32,
  _pad1: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> src: array<u32>;                // f32 bits
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;          // codes, 4 per word
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> seg_param: array<u32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;               // per column
@group(0) @binding(5) var<storage, read_write> records: array<atomic<u32>>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  fp_barrier = params.zero;
  let w = (wid.y * nwg.x + wid.x) * WG_SIZE + lid;
  if (4u * w >= params.n) {
    return;
  }
  let outliers = (params.flags & 1u) != 0u;
  var word = 0u;
  for (var k = 0u; k < 4u; k = k + 1u) {
    let i = 4u * w + k;
    if (i >= params.n) {
      break;
    }
    let at = params.first + i;
    let seg = at / params.seg_len;
    let col = at % params.seg_len;
    var code = 0u;
    if (outliers && mask[col] != 0u) {
      let half = f32_to_f16_bits(bitcast<f32>(src[i]));
      atomicOr(&records[(mask[col] - 1u) * params.rec_words + 1u + seg / 2u], half << (16u * (seg & 1u)));
    } else {
      code = layout_encode(src[i], seg_param[seg]);
    }
    word = word | (code << (8u * k));
  }
  dst[w] = word;
}
