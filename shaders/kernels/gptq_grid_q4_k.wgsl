// Q4_K's grid for gptq_block.wgsl (grid.ts q4KBlockParams / q4KCode / q4KValue are the
// CPU's): when a row reaches a super-block's first column (p.group = 256), the params ggml's
// quantize_row_q4_K_ref finds for the row's current 256 values: codecs/q4_k.wgsl's
// quantize_block itself (ggml's search, exact C float arithmetic while no guard fires; a
// block whose guard fired keeps the GPU's params, which still decode to exactly the values
// used). Its 16-byte header (d, dmin, 6-bit scales and mins) goes to `header`, and each
// sub-block's dl = d·sc and dm = dmin·m (exact: an f16 times a 6-bit integer) to grid[]
// (p.sub = 32). Needs lib/rounding.wgsl, lib/f16.wgsl, lib/bytes.wgsl, lib/kquant.wgsl and
// codecs/q4_k.wgsl.

// Per super-block and row, block_q4_K's first 16 bytes as 4 words: header[((col / 256) * rows + r) * 4 + k].
@group(0) @binding(6) var<storage, read_write> header: array<u32>;

fn open_group(r: u32, col: u32) {
  for (var i = 0u; i < BLOCK_SIZE; i++) {
    set_val(i, w[(col + i) * p.rows + r]);
  }
  has_qw = false;
  quantize_block(0u);
  let at = ((col / BLOCK_SIZE) * p.rows + r) * 4u;
  for (var k = 0u; k < 4u; k++) {
    header[at + k] = grp[k];
  }
  let d = f16_bits_to_f32(ld_u16(0u));
  let dmin = f16_bits_to_f32(ld_u16(2u));
  for (var j = 0u; j < 8u; j++) {
    let sm = kq_scale_min_k4(j, 4u);
    grid[(col / p.sub + j) * p.rows + r] = vec2<f32>(no_fuse(d * f32(sm.x)), no_fuse(dmin * f32(sm.y)));
  }
}

// quantize_row_q4_K_ref's last loop: clamp(nearest_int((x + dm) / dl), 0, 15); a dl of 0
// decodes every code to -dm, so 0.
fn grid_code(x: f32, g: vec2<f32>) -> f32 {
  if (g.x == 0.0) {
    return 0.0;
  }
  return f32(clamp(kq_nearest_int(div_rn(x + g.y, g.x)), 0, 15));
}

// dequantize_row_q4_K: dl·q − dm, the product rounded before the subtraction.
fn grid_value(code: f32, g: vec2<f32>) -> f32 {
  return no_fuse(g.x * code) - g.y;
}
