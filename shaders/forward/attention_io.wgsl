// The bindings and parameters of both attention kernels (forward/attention.wgsl, and
// forward/attention_df.wgsl for gemma), composed before either: one layout, one params list
// (gpu-forward.ts writes the same twelve words for both).

struct AttnParams {
  n: u32,
  start: u32,
  n_head: u32,
  group: u32,      // n_head / n_head_kv
  head_dim: u32,
  kv_dim: u32,
  q_dim: u32,
  window: u32,     // 0: none
  scale: f32,
  softcap: f32,    // 0: none
  ctx: u32,        // scores (attention_df: score pairs) per (query, head) in the scratch buffer
  zero: u32,       // 0 at run time: attention_df reads it as an optimisation barrier
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> at_q: array<f32>;
@group(0) @binding(1) var<storage, read> at_k: array<f32>;
@group(0) @binding(2) var<storage, read> at_v: array<f32>;
@group(0) @binding(3) var<storage, read_write> at_s: array<f32>;
@group(0) @binding(4) var<storage, read_write> at_out: array<f32>;
@group(0) @binding(5) var<uniform> at_p: AttnParams;
