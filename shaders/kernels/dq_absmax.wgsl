// Double quantization of NF4_DQ / FP4_DQ's block absmax values (src/quant/codecs/nf4.ts
// writeAbsmaxCodes and its decode; bitsandbytes quantize_blockwise(absmax - offset, 256) with
// create_dynamic_map(signed=True)). Composed with codecs/<type>_dq.wgsl.
// Encode (mode 0): one invocation per group of DQ_GROUP_BLOCKS blocks: scale = max over the
// group of |f32(absmax - offset)| (NaN sticks, as Math.max), codes = bucketize(f32(f32(absmax -
// offset) * f32(1 / max(scale, 1e-38)))) over the map's midpoints (ties to the lower entry).
// Decode (mode 1): one invocation per block: absmax = f32(f32(MAP[code] * scale) + offset).

struct Params {
  n: u32,      // blocks in this chunk
  mode: u32,   // 0 encode, 1 decode
  offset: u32, // the mean absmax, f32 bits
  zero: u32,   // always 0: feeds fp_barrier (lib/rounding.wgsl)
}

override WG_SIZE: u32 = 64u;

// The chunk's blocks, absmax f32 bits (encode: read; decode: written).
@group(0) @binding(0) var<storage, read_write> absmax: array<u32>;
// u8 codes, 4 per word (encode: written; decode: read).
@group(0) @binding(1) var<storage, read_write> codes: array<u32>;
// One f32 per group (encode: written; decode: read).
@group(0) @binding(2) var<storage, read_write> scales: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
// [0..256) the dynamic map, ascending; [256..511) the midpoints between neighbours (f32 bits).
@group(0) @binding(4) var<storage, read> dyn_map: array<u32>;

const DQ_MAP_BOUNDS: u32 = 256u;

// torch.bucketize(x, bounds): how many midpoints are below x (NaN: 0).
fn dq_bucketize(x: u32) -> u32 {
  var lo = 0u;
  var hi = 255u;
  while (lo < hi) {
    let mid = (lo + hi) >> 1u;
    if (flt_lt(dyn_map[DQ_MAP_BOUNDS + mid], x)) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  return lo;
}

fn dq_encode_group(g: u32) {
  let first = g * DQ_GROUP_BLOCKS;
  let end = min(first + DQ_GROUP_BLOCKS, params.n);
  var scale = 0u;
  var nan = false;
  for (var b = first; b < end; b = b + 1u) {
    let d = bitcast<u32>(sf_sub(bitcast<f32>(absmax[b]), bitcast<f32>(params.offset))) & F32_ABS;
    nan = nan || is_nan_bits(d);
    scale = max(scale, d);
  }
  if (nan) {
    // Math.max keeps a NaN (inf - inf: x86's default NaN, which the CPU codec stores as is);
    // then every code is bucketize(NaN) = 0.
    scales[g] = F32_DEFAULT_NAN;
    for (var w = first / 4u; w < (end + 3u) / 4u; w = w + 1u) {
      codes[w] = 0u;
    }
    return;
  }
  scales[g] = scale;
  let inv = div_rn(1.0, bitcast<f32>(max(scale, DQ_MIN_SCALE)));
  for (var w = first / 4u; w < (end + 3u) / 4u; w = w + 1u) {
    var word = 0u;
    for (var k = 0u; k < 4u; k = k + 1u) {
      let b = 4u * w + k;
      if (b < end) {
        let x = sf_mul(sf_sub(bitcast<f32>(absmax[b]), bitcast<f32>(params.offset)), inv);
        word = word | (dq_bucketize(bitcast<u32>(x)) << (8u * k));
      }
    }
    codes[w] = word;
  }
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  fp_barrier = params.zero;
  let i = (wid.y * nwg.x + wid.x) * WG_SIZE + lid;
  if (params.mode == 0u) {
    if (i * DQ_GROUP_BLOCKS < params.n) {
      dq_encode_group(i);
    }
    return;
  }
  if (i < params.n) {
    let code = (codes[i / 4u] >> (8u * (i % 4u))) & 0xffu;
    let scale = bitcast<f32>(scales[i / DQ_GROUP_BLOCKS]);
    absmax[i] = bitcast<u32>(sf_add(sf_mul(bitcast<f32>(dyn_map[code]), scale), bitcast<f32>(params.offset)));
  }
}
