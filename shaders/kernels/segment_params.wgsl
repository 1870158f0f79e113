// One value per segment from its absmax (kernels/absmax.wgsl): the codec's
// layout_seg_param (int8: 127 / absmax; fp8: the per-tensor scale). One invocation a segment.

struct Params {
  n: u32,    // segments
  zero: u32, // always 0: feeds fp_barrier (lib/rounding.wgsl)
  _pad0: u32,
  _pad1: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> seg_max: array<u32>;
@group(0) @binding(1) var<storage, read_write> seg_param: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  fp_barrier = params.zero;
  let s = (wid.y * nwg.x + wid.x) * WG_SIZE + lid;
  if (s >= params.n) {
    return;
  }
  seg_param[s] = layout_seg_param(seg_max[s]);
}
