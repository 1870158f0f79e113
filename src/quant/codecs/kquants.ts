import type { Codec } from '../codec.ts';
const todo = (name: string): Codec => ({
  encode() { throw new Error(`${name}: not implemented yet`); },
  decode() { throw new Error(`${name}: not implemented yet`); },
});
export const Q2_K = todo('q2_K'), Q3_K = todo('q3_K'), Q4_K = todo('q4_K'), Q5_K = todo('q5_K'), Q6_K = todo('q6_K'), Q8_K = todo('q8_K');
