import type { Codec } from '../codec.ts';
const todo = (name: string): Codec => ({
  encode() { throw new Error(`${name}: not implemented yet`); },
  decode() { throw new Error(`${name}: not implemented yet`); },
});
export const IQ4_NL = todo('iq4_nl'), IQ4_XS = todo('iq4_xs');
