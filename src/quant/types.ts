// The codec registry: the type table (type-data.ts: what each type is) with what runs each
// type, its codec (house rules 1 and 3 of docs/architecture.md). Code that encodes or
// decodes reads QuantType from here; code that needs only what a type is (labels, sizes,
// plans, the page's main bundle) imports type-data.ts, which carries no codec.
import type { Codec } from './codec.ts';
import * as float from './codecs/float.ts';
import * as legacy from './codecs/legacy.ts';
import * as kquants from './codecs/kquants.ts';
import * as iquants from './codecs/iquants.ts';
import * as ternary from './codecs/ternary.ts';
import * as mxfp4 from './codecs/mxfp4.ts';
import * as intn from './codecs/intn.ts';
import * as nf4 from './codecs/nf4.ts';
import * as iq1 from './codecs/iq1.ts';
import * as iq2 from './codecs/iq2.ts';
import * as iq3 from './codecs/iq3.ts';
import * as lowbit from './codecs/lowbit.ts';
import { withFastPath } from './fast/wasm-codecs.ts';
import { TYPE_INFOS, type TypeInfo } from './type-data.ts';

export { bitsPerWeight, typeInfo, whyNotApplicable, TYPE_INFOS } from './type-data.ts';
export type { TypeFamily, LayoutKind, ByteLayout, DoubleQuantLayout, GpuLayout, VecDotType, TypeInfo } from './type-data.ts';

/** A type of the table with its codec. */
export interface QuantType extends TypeInfo {
  /**
   * The codec everything runs: the reference's bytes, from the WebAssembly fast path
   * (quant/fast/) when it is installed and has the type, else from the reference.
   */
  readonly codec: Codec;
  /** The plain TypeScript reference codec (house rule 3): the oracle the fast path is tested against. */
  readonly reference: Codec;
}

/** The codec of each type of the table (type-data.ts), by id. */
const CODECS: Readonly<Record<string, Codec>> = {
  f32: float.F32,
  f16: float.F16,
  bf16: float.BF16,
  q8_0: legacy.Q8_0,
  q5_1: legacy.Q5_1,
  q5_0: legacy.Q5_0,
  q4_1: legacy.Q4_1,
  q4_0: legacy.Q4_0,
  q6_K: kquants.Q6_K,
  q5_K: kquants.Q5_K,
  q4_K: kquants.Q4_K,
  q3_K: kquants.Q3_K,
  q2_K: kquants.Q2_K,
  q8_K: kquants.Q8_K,
  iq4_nl: iquants.IQ4_NL,
  iq4_xs: iquants.IQ4_XS,
  iq3_s: iq3.IQ3_S,
  iq3_xxs: iq3.IQ3_XXS,
  iq2_s: iq2.IQ2_S,
  iq2_xs: iq2.IQ2_XS,
  iq2_xxs: iq2.IQ2_XXS,
  iq1_m: iq1.IQ1_M,
  iq1_s: iq1.IQ1_S,
  tq2_0: ternary.TQ2_0,
  tq1_0: ternary.TQ1_0,
  mxfp4: mxfp4.MXFP4,
  nvfp4: lowbit.NVFP4,
  q2_0: lowbit.Q2_0,
  q1_0: lowbit.Q1_0,
  fp8_e4m3: float.FP8_E4M3,
  fp8_e5m2: float.FP8_E5M2,
  int8: intn.INT8,
  int8_outlier: intn.INT8_OUTLIER,
  nf4: nf4.NF4,
  nf4_dq: nf4.NF4_DQ,
  fp4: nf4.FP4,
  fp4_dq: nf4.FP4_DQ,
  ...Object.fromEntries(
    ([32, 64, 128] as const).flatMap((group) => (['sym', 'asym'] as const).map((mode) => [`int4_g${group}_${mode}`, intn.int4Codec(group, mode)])),
  ),
};

function withCodec(info: TypeInfo): QuantType {
  const codec = CODECS[info.id];
  if (!codec) throw new Error(`type ${info.id}: no codec in the registry (src/quant/types.ts)`);
  return { ...info, codec: withFastPath(info.id, codec), reference: codec };
}

export const QUANT_TYPES: readonly QuantType[] = TYPE_INFOS.map(withCodec);

const BY_ID = new Map(QUANT_TYPES.map((t) => [t.id.toLowerCase(), t]));

/** Find a type by id, case-insensitively (docs/contracts.md: `Q4_K` = `q4_K`). */
export function quantType(id: string): QuantType | undefined {
  return BY_ID.get(id.toLowerCase());
}

const BY_GGML_ID = new Map(QUANT_TYPES.filter((t) => t.ggml).map((t) => [t.ggml!.id, t]));

/** The table row of a ggml type id, if quantlab has a codec for it. */
export function quantTypeByGgmlId(id: number): QuantType | undefined {
  return BY_GGML_ID.get(id);
}

/** Decode `count` values of ggml type `ggmlType` read as one flat run (formats' GgmlDequantizer). */
export function dequantizeGgml(ggmlType: number, bytes: Uint8Array, count: number): Float32Array {
  const type = quantTypeByGgmlId(ggmlType);
  if (!type) throw new Error(`ggml type ${ggmlType} cannot be decoded by quantlab yet`);
  return type.codec.decode(bytes, 1, count);
}
