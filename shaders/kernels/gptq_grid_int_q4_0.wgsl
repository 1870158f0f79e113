// GPTQ's grids for gptq_block.wgsl: GPTQ's INT grids (asym, groups of p.group) and Q4_0's
// (groups of 32, d = the largest-magnitude value / -8). grid.ts is the CPU's. Needs
// lib/rounding.wgsl (div_rn, no_fuse) and lib/f16.wgsl (Q4_0's f16 scale).

const GRID_INT: u32 = 0u;
const GRID_Q4_0: u32 = 1u;

fn open_group(r: u32, col: u32) {
  grid[(col / p.group) * p.rows + r] = group_params(r, col);
}

// grid.ts groupParams on the row's current values w[col..end).
fn group_params(r: u32, col: u32) -> vec2<f32> {
  let end = min(col + p.group, p.cols);
  if (p.kind == GRID_Q4_0) {
    // ggml quantize_row_q4_0_ref: d = (the value of largest magnitude) / -8.
    var amax = 0.0;
    var vmax = 0.0;
    for (var c = col; c < end; c++) {
      let v = w[c * p.rows + r];
      if (abs(v) > amax) {
        amax = abs(v);
        vmax = v;
      }
    }
    return vec2<f32>(vmax / -8.0, 8.0); // exact: a power of two
  }
  // GPTQ's Quantizer.find_params (asym): the range includes 0.
  var lo = 0.0;
  var hi = 0.0;
  for (var c = col; c < end; c++) {
    let v = w[c * p.rows + r];
    lo = min(lo, v);
    hi = max(hi, v);
  }
  if (lo == 0.0 && hi == 0.0) {
    lo = -1.0;
    hi = 1.0;
  }
  let scale = div_rn(hi - lo, f32(p.maxq));
  return vec2<f32>(scale, round(div_rn(-lo, scale))); // round: half to even, as torch.round
}

// x's code on the grid (grid.ts q4_0Code, quantizeValue's q).
fn grid_code(x: f32, g: vec2<f32>) -> f32 {
  if (p.kind == GRID_Q4_0) {
    let d = g.x;
    let id = select(0.0, div_rn(1.0, d), d != 0.0);
    return clamp(trunc(no_fuse(x * id) + 8.5), 0.0, 15.0);
  }
  // Plain f32 division per weight: div_rn, exact, cost as much again as the whole walk on
  // SwiftShader, and can only move a value that sits on a rounding tie.
  return clamp(round(x / g.x) + g.y, 0.0, f32(p.maxq));
}

// The code's value (grid.ts quantizeValue); gptq-gpu.ts computes the same f32 from the codes.
fn grid_value(code: f32, g: vec2<f32>) -> f32 {
  if (p.kind == GRID_Q4_0) {
    return (code - 8.0) * f16_bits_to_f32(f32_to_f16_bits(g.x));
  }
  return g.x * (code - g.y);
}
