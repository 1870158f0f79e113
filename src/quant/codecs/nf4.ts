import type { Codec } from '../codec.ts';
const todo = (name: string): Codec => ({
  encode() { throw new Error(`${name}: not implemented yet`); },
  decode() { throw new Error(`${name}: not implemented yet`); },
});
export const NF4 = todo('nf4'), NF4_DQ = todo('nf4_dq'), FP4 = todo('fp4'), FP4_DQ = todo('fp4_dq');
export const NF4_BLOCK_BYTES = 36, DQ_BLOCK_BYTES = 33;
export const dqBytes = (rows: number, rowLength: number) => (rows * rowLength / 64) * 33 + Math.ceil(rows * rowLength / 64 / 256) * 4 + 4;
