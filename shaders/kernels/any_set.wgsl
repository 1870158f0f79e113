// Whether any of the first n words is non-zero: flag[0] |= 1. The compare chain
// (src/gpu/compare-chain.ts) asks it of the quantize kernel's to_cpu masks, so that it reads
// back one word instead of a mask per group. Grid-stride over the words.

struct Params {
  n: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> words: array<u32>;
@group(0) @binding(1) var<storage, read_write> flag: array<atomic<u32>, 1>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let stride = nwg.x * nwg.y * WG_SIZE;
  var any = 0u;
  for (var i = (wid.y * nwg.x + wid.x) * WG_SIZE + lid; i < params.n; i = i + stride) {
    any = any | words[i];
  }
  if (any != 0u) {
    atomicOr(&flag[0], 1u);
  }
}
