// Entry point of kernels/matmul.wgsl with subgroups (composed after
// matmul_enable_subgroups.wgsl): subgroupAdd reduces each subgroup's partial sums, the
// subgroups' sums go to workgroup memory by subgroup_id, one barrier, and one invocation
// per output adds them in subgroup order. Nothing assumes how invocations map to
// subgroups, nor that subgroups are full.

// WebGPU subgroups have at least 4 invocations, so at most WG_SIZE / 4 subgroups.
const MM_MIN_SUBGROUP_SIZE: u32 = 4u;
var<workgroup> mm_sg_sums: array<f32, (WG_SIZE / MM_MIN_SUBGROUP_SIZE) * ROWS_PER_WG * TOKENS_PER_WG>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sg: u32,
        @builtin(num_subgroups) n_sg: u32) {
  fp_barrier = mm_p.zero;
  let row0 = wid.x * ROWS_PER_WG;
  let tok0 = wid.y * TOKENS_PER_WG;
  mm_accumulate(row0, tok0, lid);
  let max_sg = WG_SIZE / MM_MIN_SUBGROUP_SIZE;
  let nq = ROWS_PER_WG * TOKENS_PER_WG;
  for (var q = 0u; q < nq; q = q + 1u) {
    let s = subgroupAdd(mm_acc[q]);
    if (subgroupElect()) {
      mm_sg_sums[q * max_sg + sg] = s;
    }
  }
  workgroupBarrier();
  for (var q = lid; q < nq; q = q + WG_SIZE) {
    var s = 0.0;
    for (var i = 0u; i < n_sg; i = i + 1u) {
      s = s + mm_sg_sums[q * max_sg + i];
    }
    mm_store(row0, tok0, q, s);
  }
}
