// Quantize f32 values into a codec's blocks. One invocation per group of GROUP_BLOCKS
// blocks (lib/bytes.wgsl): it writes whole u32 words, so no word is shared. The dispatch
// may be 2D (x capped by maxComputeWorkgroupsPerDimension): invocation index =
// (workgroup y * workgroups x + workgroup x) * WG_SIZE + local index.

struct Params {
  n_blocks: u32,   // blocks in this chunk; the destination holds ceil(n/GROUP_BLOCKS) groups
  zero: u32,       // always 0: feeds fp_barrier (lib/rounding.wgsl)
  row_blocks: u32, // blocks per row with importance weights; 0 without
  col0: u32,       // with importance: the chunk's first block's index within its row
}

override WG_SIZE: u32 = 64u;
// Whether this pipeline takes importance weights: a separate pipeline, so that the plain
// one compiles without the codecs' weighted paths (half the compile time on SwiftShader).
override WEIGHTED: bool = false;

@group(0) @binding(0) var<storage, read> src: array<u32>;        // f32 bits
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;  // the blocks, as words
@group(0) @binding(2) var<uniform> params: Params;
// Per group: bit b set when block b of the group must be encoded on the CPU (block_to_cpu).
@group(0) @binding(3) var<storage, read_write> to_cpu: array<u32>;
// With importance: the row's weights (row_blocks * BLOCK_SIZE), then sum(x^2) / n of each
// row the chunk touches, starting with the row of its first block.
@group(0) @binding(4) var<storage, read> importance: array<f32>;

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
  var cpu_mask = 0u;
  for (var b = 0u; b < GROUP_BLOCKS; b = b + 1u) {
    let blk = first + b;
    if (blk >= params.n_blocks) {
      break; // the tail of the last group stays zero
    }
    let at = blk * BLOCK_SIZE;
    for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
      vals[i] = src[at + i];
    }
    has_qw = WEIGHTED && params.row_blocks != 0u;
    if (has_qw) {
      let col = (params.col0 + blk) % params.row_blocks;
      for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
        qw[i] = importance[col * BLOCK_SIZE + i];
      }
      qw_sigma2 = importance[params.row_blocks * BLOCK_SIZE + (params.col0 + blk) / params.row_blocks];
    }
    block_to_cpu = false;
    quantize_block(b * BLOCK_BYTES);
    cpu_mask = cpu_mask | select(0u, 1u << b, block_to_cpu);
  }
  to_cpu[g] = cpu_mask;
  let out = g * GROUP_WORDS;
  for (var w = 0u; w < GROUP_WORDS; w = w + 1u) {
    dst[out + w] = grp[w];
  }
}
