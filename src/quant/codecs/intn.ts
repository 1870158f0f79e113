import type { Codec } from '../codec.ts';
const todo = (name: string): Codec => ({
  encode() { throw new Error(`${name}: not implemented yet`); },
  decode() { throw new Error(`${name}: not implemented yet`); },
});
export const INT8 = todo('int8'), INT8_OUTLIER = todo('int8_outlier');
export const int8Bytes = (rows: number, rowLength: number) => rows * (rowLength + 4);
export const int4Codec = (group: number, mode: 'sym' | 'asym') => todo(`int4_g${group}_${mode}`);
export const int4BlockBytes = (group: number, mode: 'sym' | 'asym') => 2 + group / 2 + (mode === 'asym' ? 2 : 0);
