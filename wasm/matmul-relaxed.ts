// AssemblyScript entry of the relaxed-SIMD matrix-product module (scripts/build-wasm.mjs builds
// it into wasm/build/matmul-relaxed.wasm with `--enable relaxed-simd`): wasm/matmul.ts alone,
// whose f32 sums then take one f32x4.relaxed_madd a step. Loaded only where the engine
// validates relaxed SIMD (src/quant/fast/wasm-codecs.ts); the f64 sums are quant.wasm's, bit
// for bit (the feature changes only matmul.ts's `madd`).
export { matmulSlab, matmulSlabF32, widenF32 } from './matmul';

export function heapBase(): usize {
  return __heap_base;
}
