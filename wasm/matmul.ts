// AssemblyScript: the CPU forward pass's matrix products (src/model/fast-linear.ts copies
// a slab of weight rows and the inputs in, calls matmulSlab, reads the outputs back).
// The CPU reference (src/model/families/linear.ts matmulF32) multiplies in f64 (an f32
// times an f32 is exact there) and sums each row from column 0 on in f64. Here the same
// exact products are summed in f64 too, but two columns at a time (even and odd lanes of
// an f64x2, added at the end): both sums carry ~1e-16 relative error, so after the one
// rounding to f32 the outputs are the reference's, or one f32 ulp from it where the f64
// sum lies next to a rounding boundary.

/** One f32 lane pair of v (lanes 0,1 or 2,3) as an f64x2. */
@inline function low(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
@inline function high(v: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 2, 3));
}
@inline function lanes(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/**
 * y[t·yStride + r] = Σ_c w[r·cols + c]·x[t·cols + c] for rows r < rows, tokens t < n:
 * w f32 (rows × cols), x f64 (n × cols, the inputs widened once by the caller), y f32.
 * cols is a multiple of 4. Two rows meet four tokens at a time (each weight read and widened
 * serves four tokens, each input read two rows); every output is the same sum, term by term,
 * whichever tile computes it.
 */
export function matmulSlab(w: usize, rows: i32, cols: i32, x: usize, n: i32, y: usize, yStride: i32): void {
  const rowBytes = <usize>cols << 2;
  const xBytes = <usize>cols << 3;
  const ys = <usize>yStride << 2;
  let t0 = 0;
  // Tokens outside, four at a time, rows inside: each weight read and widened serves four tokens.
  for (; t0 + 4 <= n; t0 += 4) {
    const x0 = x + <usize>t0 * xBytes;
    const x1 = x0 + xBytes, x2 = x1 + xBytes, x3 = x2 + xBytes;
    let r = 0;
    for (; r + 2 <= rows; r += 2) {
      const wa = w + <usize>r * rowBytes;
      const wb = wa + rowBytes;
      let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
      let b0 = f64x2.splat(0), b1 = f64x2.splat(0), b2 = f64x2.splat(0), b3 = f64x2.splat(0);
      for (let c = 0; c < cols; c += 4) {
        const va = v128.load(wa + (<usize>c << 2));
        const vb = v128.load(wb + (<usize>c << 2));
        const al = low(va), ah = high(va), bl = low(vb), bh = high(vb);
        const o = <usize>c << 3;
        let p = v128.load(x0 + o), q = v128.load(x0 + o, 16);
        a0 = f64x2.add(a0, f64x2.add(f64x2.mul(al, p), f64x2.mul(ah, q)));
        b0 = f64x2.add(b0, f64x2.add(f64x2.mul(bl, p), f64x2.mul(bh, q)));
        p = v128.load(x1 + o); q = v128.load(x1 + o, 16);
        a1 = f64x2.add(a1, f64x2.add(f64x2.mul(al, p), f64x2.mul(ah, q)));
        b1 = f64x2.add(b1, f64x2.add(f64x2.mul(bl, p), f64x2.mul(bh, q)));
        p = v128.load(x2 + o); q = v128.load(x2 + o, 16);
        a2 = f64x2.add(a2, f64x2.add(f64x2.mul(al, p), f64x2.mul(ah, q)));
        b2 = f64x2.add(b2, f64x2.add(f64x2.mul(bl, p), f64x2.mul(bh, q)));
        p = v128.load(x3 + o); q = v128.load(x3 + o, 16);
        a3 = f64x2.add(a3, f64x2.add(f64x2.mul(al, p), f64x2.mul(ah, q)));
        b3 = f64x2.add(b3, f64x2.add(f64x2.mul(bl, p), f64x2.mul(bh, q)));
      }
      const yo = y + ((<usize>t0 * <usize>yStride + <usize>r) << 2);
      store<f32>(yo, <f32>lanes(a0));
      store<f32>(yo + 4, <f32>lanes(b0));
      store<f32>(yo + ys, <f32>lanes(a1));
      store<f32>(yo + ys + 4, <f32>lanes(b1));
      store<f32>(yo + 2 * ys, <f32>lanes(a2));
      store<f32>(yo + 2 * ys + 4, <f32>lanes(b2));
      store<f32>(yo + 3 * ys, <f32>lanes(a3));
      store<f32>(yo + 3 * ys + 4, <f32>lanes(b3));
    }
    if (r < rows) {
      const wa = w + <usize>r * rowBytes;
      for (let k = 0; k < 4; k++) dotRow(wa, cols, x + <usize>(t0 + k) * xBytes, y + ((<usize>(t0 + k) * <usize>yStride + <usize>r) << 2));
    }
  }
  if (t0 < n) matmulSlabPairs(w, rows, cols, x + <usize>t0 * xBytes, n - t0, y + ((<usize>t0 * <usize>yStride) << 2), yStride);
}

/** matmulSlab's tile for the last n < 4 tokens: two rows meet two tokens at a time (the same sums, term by term). */
function matmulSlabPairs(w: usize, rows: i32, cols: i32, x: usize, n: i32, y: usize, yStride: i32): void {
  const rowBytes = <usize>cols << 2;
  const xBytes = <usize>cols << 3;
  let r = 0;
  for (; r + 2 <= rows; r += 2) {
    const wa = w + <usize>r * rowBytes;
    const wb = wa + rowBytes;
    let t = 0;
    for (; t + 2 <= n; t += 2) {
      const x0 = x + <usize>t * xBytes;
      const x1 = x0 + xBytes;
      let a0 = f64x2.splat(0), a1 = f64x2.splat(0), b0 = f64x2.splat(0), b1 = f64x2.splat(0);
      for (let c = 0; c < cols; c += 4) {
        const va = v128.load(wa + (<usize>c << 2));
        const vb = v128.load(wb + (<usize>c << 2));
        const al = low(va), ah = high(va), bl = low(vb), bh = high(vb);
        const o = <usize>c << 3;
        const p0 = v128.load(x0 + o), q0 = v128.load(x0 + o, 16);
        const p1 = v128.load(x1 + o), q1 = v128.load(x1 + o, 16);
        a0 = f64x2.add(a0, f64x2.add(f64x2.mul(al, p0), f64x2.mul(ah, q0)));
        a1 = f64x2.add(a1, f64x2.add(f64x2.mul(al, p1), f64x2.mul(ah, q1)));
        b0 = f64x2.add(b0, f64x2.add(f64x2.mul(bl, p0), f64x2.mul(bh, q0)));
        b1 = f64x2.add(b1, f64x2.add(f64x2.mul(bl, p1), f64x2.mul(bh, q1)));
      }
      const yo = y + ((<usize>t * <usize>yStride + <usize>r) << 2);
      const ys = <usize>yStride << 2;
      store<f32>(yo, <f32>lanes(a0));
      store<f32>(yo + 4, <f32>lanes(b0));
      store<f32>(yo + ys, <f32>lanes(a1));
      store<f32>(yo + ys + 4, <f32>lanes(b1));
    }
    if (t < n) {
      dotRow(wa, cols, x + <usize>t * xBytes, y + ((<usize>t * <usize>yStride + <usize>r) << 2));
      dotRow(wb, cols, x + <usize>t * xBytes, y + ((<usize>t * <usize>yStride + <usize>r + 1) << 2));
    }
  }
  if (r < rows) {
    const wa = w + <usize>r * rowBytes;
    for (let t = 0; t < n; t++) dotRow(wa, cols, x + <usize>t * xBytes, y + ((<usize>t * <usize>yStride + <usize>r) << 2));
  }
}

/** One row against one input into *out. */
function dotRow(wa: usize, cols: i32, x0: usize, out: usize): void {
  let a = f64x2.splat(0);
  for (let c = 0; c < cols; c += 4) {
    const va = v128.load(wa + (<usize>c << 2));
    const o = <usize>c << 3;
    a = f64x2.add(a, f64x2.add(f64x2.mul(low(va), v128.load(x0 + o)), f64x2.mul(high(va), v128.load(x0 + o, 16))));
  }
  store<f32>(out, <f32>lanes(a));
}

/** x (n f32) widened to f64 at out. */
export function widenF32(x: usize, n: i32, out: usize): void {
  for (let i = 0; i < n; i++) store<f64>(out + (<usize>i << 3), <f64>load<f32>(x + (<usize>i << 2)));
}

// ---- f32 accumulation (fast-linear.ts `accumulate: 'f32'`) ----------------------------------
// llama.cpp's own numerics for f32 weights: products and sums in f32, four lanes at a time
// (each lane sums columns c ≡ lane mod 4 in order; the lanes are added (0+1)+(2+3) at the
// end). Error against the f64 reference: a few f32 ulps of the sum of |w·x| terms.
// Built twice (scripts/build-wasm.mjs): in quant.wasm each step is a mul then an add (the
// same bits on every machine); in matmul-relaxed.wasm (entry wasm/matmul-relaxed.ts, relaxed
// SIMD enabled) one f32x4.relaxed_madd, which the engine fuses where the CPU has FMA (x86
// with FMA, ARM: llama.cpp's ggml_vec_dot_f32 fuses too) and leaves as mul + add elsewhere:
// the same bits run to run on one machine, not across machines.

/** c + a·b per lane: fused (rounded once) in the relaxed build where the engine fuses, else a mul then an add. */
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** The four lanes of an f32x4 summed as (l0 + l1) + (l2 + l3). */
@inline function lanes4(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/**
 * As matmulSlab, with x f32 (n × cols, not widened) and f32 sums. Two rows meet four
 * tokens at a time (each weight read serves four tokens, each input read two rows); every
 * output is the same lane sum whichever tile computes it.
 */
export function matmulSlabF32(w: usize, rows: i32, cols: i32, x: usize, n: i32, y: usize, yStride: i32): void {
  const rowBytes = <usize>cols << 2;
  const ys = <usize>yStride << 2;
  let t = 0;
  // Tokens outside, rows inside: four inputs (4 × cols f32) stay in the level-1 cache while
  // the slab's rows stream past them from level 2.
  for (; t + 4 <= n; t += 4) {
    const x0 = x + <usize>t * rowBytes;
    const x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
    let r = 0;
    for (; r + 2 <= rows; r += 2) {
      const wa = w + <usize>r * rowBytes;
      const wb = wa + rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let o: usize = 0; o < rowBytes; o += 16) {
        const va = v128.load(wa + o), vb = v128.load(wb + o);
        const p0 = v128.load(x0 + o), p1 = v128.load(x1 + o), p2 = v128.load(x2 + o), p3 = v128.load(x3 + o);
        a0 = madd(va, p0, a0);
        b0 = madd(vb, p0, b0);
        a1 = madd(va, p1, a1);
        b1 = madd(vb, p1, b1);
        a2 = madd(va, p2, a2);
        b2 = madd(vb, p2, b2);
        a3 = madd(va, p3, a3);
        b3 = madd(vb, p3, b3);
      }
      const yo = y + ((<usize>t * <usize>yStride + <usize>r) << 2);
      store<f32>(yo, lanes4(a0));
      store<f32>(yo + 4, lanes4(b0));
      store<f32>(yo + ys, lanes4(a1));
      store<f32>(yo + ys + 4, lanes4(b1));
      store<f32>(yo + 2 * ys, lanes4(a2));
      store<f32>(yo + 2 * ys + 4, lanes4(b2));
      store<f32>(yo + 3 * ys, lanes4(a3));
      store<f32>(yo + 3 * ys + 4, lanes4(b3));
    }
    if (r < rows) {
      const wa = w + <usize>r * rowBytes;
      for (let k = 0; k < 4; k++) store<f32>(y + ((<usize>(t + k) * <usize>yStride + <usize>r) << 2), dotRowF32(wa, rowBytes, x0 + <usize>k * rowBytes));
    }
  }
  for (; t < n; t++) {
    const x0 = x + <usize>t * rowBytes;
    for (let r = 0; r < rows; r++) store<f32>(y + ((<usize>t * <usize>yStride + <usize>r) << 2), dotRowF32(w + <usize>r * rowBytes, rowBytes, x0));
  }
}

/** One row against one input, f32 lanes as matmulSlabF32 sums them. */
function dotRowF32(wa: usize, rowBytes: usize, x0: usize): f32 {
  let a = f32x4.splat(0);
  for (let o: usize = 0; o < rowBytes; o += 16) a = madd(v128.load(wa + o), v128.load(x0 + o), a);
  return lanes4(a);
}
