import type { Codec } from '../codec.ts';
const todo = (name: string): Codec => ({
  encode() { throw new Error(`${name}: not implemented yet`); },
  decode() { throw new Error(`${name}: not implemented yet`); },
});
export const Q4_0 = todo('q4_0'), Q4_1 = todo('q4_1'), Q5_0 = todo('q5_0'), Q5_1 = todo('q5_1'), Q8_0 = todo('q8_0');
