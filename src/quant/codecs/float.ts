import type { Codec } from '../codec.ts';
const todo = (name: string): Codec => ({
  encode() { throw new Error(`${name}: not implemented yet`); },
  decode() { throw new Error(`${name}: not implemented yet`); },
});
export const F32 = todo('f32'), F16 = todo('f16'), BF16 = todo('bf16'), FP8_E4M3 = todo('fp8_e4m3'), FP8_E5M2 = todo('fp8_e5m2');
export const fp8Bytes = (rows: number, rowLength: number) => rows * rowLength + 4;
