// What every training kernel shares (src/train/gpu/kernels.ts composes it first): the
// workgroup size and the flat invocation index of a 1D or 2D dispatch.
override WG_SIZE: u32 = 64u;

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG_SIZE + lid;
}

fn sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}
