// Dequantize a codec's blocks to f32. One invocation per group of GROUP_BLOCKS blocks
// (lib/bytes.wgsl), reading the group's whole words; 2D dispatch as in quantize.wgsl.

struct Params {
  n_blocks: u32,   // blocks in this chunk; the source is padded to whole groups
  zero: u32,
  _pad0: u32,
  _pad1: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> src: array<u32>;        // the blocks, as words
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;  // f32 bits
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  fp_barrier = params.zero;
  let g = (wid.y * nwg.x + wid.x) * WG_SIZE + lid;
  let first = g * GROUP_BLOCKS;
  if (first >= params.n_blocks) {
    return;
  }
  let at = g * GROUP_WORDS;
  for (var w = 0u; w < GROUP_WORDS; w = w + 1u) {
    grp[w] = src[at + w];
  }
  for (var b = 0u; b < GROUP_BLOCKS; b = b + 1u) {
    let blk = first + b;
    if (blk >= params.n_blocks) {
      break;
    }
    dequantize_block(b * BLOCK_BYTES);
    let out = blk * BLOCK_SIZE;
    for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
      dst[out + i] = vals[i];
    }
  }
}
