import type { Codec } from '../codec.ts';
const todo = (name: string): Codec => ({
  encode() { throw new Error(`${name}: not implemented yet`); },
  decode() { throw new Error(`${name}: not implemented yet`); },
});
export const TQ1_0 = todo('tq1_0'), TQ2_0 = todo('tq2_0');
