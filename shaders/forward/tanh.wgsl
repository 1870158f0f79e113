// tanh in f32 to a few ulp everywhere: WGSL's tanh has no precision bound (SwiftShader's
// loses digits near 0 to cancellation), and soft-capping (gemma2) needs it near 0 too.
// |x| < 0.55: the Taylor series to x^15 (the next term is below 1e-8 relative there);
// beyond: 1 - 2 / (exp(2|x|) + 1), with the sign.
fn tanh_acc(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.55) {
    let x2 = x * x;
    var p = -929569.0 / 638512875.0;
    p = p * x2 + 21844.0 / 6081075.0;
    p = p * x2 - 1382.0 / 155925.0;
    p = p * x2 + 62.0 / 2835.0;
    p = p * x2 - 17.0 / 315.0;
    p = p * x2 + 2.0 / 15.0;
    p = p * x2 - 1.0 / 3.0;
    return x + x * x2 * p;
  }
  if (a > 15.0) {
    return sign(x);
  }
  return sign(x) * (1.0 - 2.0 / (exp(2.0 * a) + 1.0));
}
