// Embedding gather (llama.cpp's get_rows) from the packed token embedding: each
// invocation dequantizes one block of one token's row with the type's own codec
// (composed before this file, as in kernels/matmul.wgsl) and writes its values, times
// `scale` (gemma's sqrt(n_embd); 1 elsewhere), into the residual stream x.

struct EmbedParams {
  n: u32,          // tokens in the chunk
  blocks: u32,     // blocks per row
  row_bytes: u32,  // bytes per row
  cols: u32,       // values per row (n_embd)
  scale: f32,
  zero: u32,       // always 0: feeds fp_barrier (lib/rounding.wgsl)
  _a: u32,
  _b: u32,
}

override WG_SIZE: u32 = 64u;
const EM_BLOCK_WORDS: u32 = (BLOCK_BYTES + 3u) / 4u;

@group(0) @binding(0) var<storage, read> em_w: array<u32>;  // the rows, padded by one word
@group(0) @binding(1) var<storage, read> em_tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> em_x: array<f32>;
@group(0) @binding(3) var<uniform> em_p: EmbedParams;

fn em_load_block(off: u32) {
  let i0 = off >> 2u;
  let sh = (off & 3u) * 8u;
  for (var i = 0u; i < EM_BLOCK_WORDS; i = i + 1u) {
    if (sh == 0u) {
      grp[i] = em_w[i0 + i];
    } else {
      grp[i] = (em_w[i0 + i] >> sh) | (em_w[i0 + i + 1u] << (32u - sh));
    }
  }
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  fp_barrier = em_p.zero;
  let idx = gid.x + gid.y * (65535u * WG_SIZE);
  if (idx >= em_p.n * em_p.blocks) {
    return;
  }
  let t = idx / em_p.blocks;
  let k = idx % em_p.blocks;
  em_load_block(em_tokens[t] * em_p.row_bytes + k * BLOCK_BYTES);
  dequantize_block(0u);
  let xo = t * em_p.cols + k * BLOCK_SIZE;
  for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
    let v = bitcast<f32>(vals[i]);
    em_x[xo + i] = select(v * em_p.scale, v, em_p.scale == 1.0);
  }
}
