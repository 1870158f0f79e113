// Entry point of kernels/matmul.wgsl without subgroups: the WG_SIZE partial sums of each
// output are reduced by a tree in workgroup memory (log2(WG_SIZE) barriers): slot i gets
// slot i + s added for s = WG_SIZE/2, ..., 1.

var<workgroup> mm_red: array<f32, WG_SIZE * ROWS_PER_WG * TOKENS_PER_WG>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  fp_barrier = mm_p.zero;
  let row0 = wid.x * ROWS_PER_WG;
  let tok0 = wid.y * TOKENS_PER_WG;
  mm_accumulate(row0, tok0, lid);
  let nq = ROWS_PER_WG * TOKENS_PER_WG;
  for (var q = 0u; q < nq; q = q + 1u) {
    mm_red[q * WG_SIZE + lid] = mm_acc[q];
  }
  for (var s = WG_SIZE / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) {
      for (var q = 0u; q < nq; q = q + 1u) {
        mm_red[q * WG_SIZE + lid] = mm_red[q * WG_SIZE + lid] + mm_red[q * WG_SIZE + lid + s];
      }
    }
  }
  workgroupBarrier();
  for (var q = lid; q < nq; q = q + WG_SIZE) {
    mm_store(row0, tok0, q, mm_red[q * WG_SIZE]);
  }
}
