// The scale fields of one block, decoded for the block inspector: what a reader of
// ggml-common.h (or bitsandbytes / GPTQ) would look at first. Offsets follow each codec's
// byte map (the comment at the top of its file).
import { f16BitsToF32 } from '../formats/float16.ts';
import { ue4m3ToF32Half } from './codecs/lowbit.ts';

type FieldReader = (block: DataView) => Record<string, number>;

const f16 = (v: DataView, at: number) => f16BitsToF32(v.getUint16(at, true));
const scale = (at: number): FieldReader => (v) => ({ d: f16(v, at) });
const scaleMin = (dAt: number, mAt: number): FieldReader => (v) => ({ d: f16(v, dAt), dmin: f16(v, mAt) });

const READERS: Readonly<Record<string, FieldReader>> = {
  q4_0: scale(0),
  q5_0: scale(0),
  q8_0: scale(0),
  iq4_nl: scale(0),
  iq4_xs: scale(0),
  q4_1: (v) => ({ d: f16(v, 0), m: f16(v, 2) }),
  q5_1: (v) => ({ d: f16(v, 0), m: f16(v, 2) }),
  q2_K: scaleMin(80, 82),
  q3_K: scale(108),
  q4_K: scaleMin(0, 2),
  q5_K: scaleMin(0, 2),
  q6_K: scale(208),
  tq1_0: scale(52),
  tq2_0: scale(64),
  mxfp4: (v) => ({ 'scale 2^e': 2 ** (v.getUint8(0) - 127) }),
  // The i-quants and q1_0/q2_0 start with their f16 super-block scale.
  iq3_s: scale(0),
  iq3_xxs: scale(0),
  iq2_s: scale(0),
  iq2_xs: scale(0),
  iq2_xxs: scale(0),
  iq1_s: scale(0),
  q2_0: scale(0),
  q1_0: scale(0),
  // iq1_m keeps its f16 scale in the top nibbles of its four u16 scale words (at 48: after qs and qh).
  iq1_m: (v) => {
    const w = (i: number) => v.getUint16(48 + 2 * i, true);
    return { d: f16BitsToF32((w(0) >> 12) | ((w(1) >> 8) & 0x00f0) | ((w(2) >> 4) & 0x0f00) | (w(3) & 0xf000)) };
  },
  // nvfp4: four UE4M3 scales, one per 16 weights (ue4m3ToF32Half halves them for the doubled E2M1 table).
  nvfp4: (v) => Object.fromEntries([0, 1, 2, 3].map((i) => [`d${i}`, 2 * ue4m3ToF32Half(v.getUint8(i))])),
  nf4: (v) => ({ absmax: v.getFloat32(0, true) }),
  fp4: (v) => ({ absmax: v.getFloat32(0, true) }),
  ...Object.fromEntries([32, 64, 128].flatMap((g) => [
    [`int4_g${g}_sym`, (v: DataView) => ({ scale: f16(v, 0) })],
    [`int4_g${g}_asym`, (v: DataView) => ({ scale: f16(v, 0), zero: v.getUint8(2) })],
  ])),
};

/** The decoded scale fields of a block of `typeId`, or {} where the layout keeps them elsewhere. */
export function blockFields(typeId: string, block: Uint8Array): Record<string, number> {
  const read = READERS[typeId];
  return read ? read(new DataView(block.buffer, block.byteOffset, block.byteLength)) : {};
}
