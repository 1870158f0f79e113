// The QAT model as a GGUF: the export of the same plan that gave the types (export/plan.ts),
// with every quantized tensor's data the blocks of the last step (ExportRequest.precomputed,
// as GPTQ passes its blocks) and every tensor the plan keeps (norms in f32, a fallback
// f16 ...) read from the trained master values (replacedSource), encoded in its own type by
// the same codec the training ran. So the file decodes to exactly the weights QAT's "after"
// scores used, and llama.cpp runs that model. quantize.qat.* keys say how it was trained
// (llama.cpp ignores keys it does not know).
import { replacedSource } from '../calibrate/awq-export.ts';
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufEntry, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { planExport, type ExportPlan, type ExportRequest } from '../export/plan.ts';
import type { ExportSource } from '../export/source.ts';
import { exportGguf, type ExportOptions } from '../export/write.ts';
import type { PlanMode } from '../quant/presets.ts';
import type { QatResult } from './qat.ts';

export const QAT_KEYS = {
  dataset: 'quantize.qat.dataset',
  steps: 'quantize.qat.steps',
  loss: 'quantize.qat.loss',
  learningRate: 'quantize.qat.learning_rate',
  seqLen: 'quantize.qat.sequence_length',
  seed: 'quantize.qat.seed',
} as const;

/** The export source (trained values in place of the model's) and plan of a QAT result. */
export function qatExportPlan(result: QatResult, mode: PlanMode): { source: ExportSource; plan: ExportPlan } {
  const converted = new Set(result.plan.tensors.filter((t) => t.converted).map((t) => t.name));
  const kept = new Map([...result.master].filter(([name]) => !converted.has(name)));
  const precomputed = new Map([...result.blocks].filter(([name]) => converted.has(name)));
  const o = result.options;
  const { STRING, UINT32, FLOAT32 } = GGUF_VALUE_TYPE;
  const keys: GgufMetadataEntry[] = [
    ggufEntry(QAT_KEYS.dataset, STRING, o.dataset),
    ggufEntry(QAT_KEYS.steps, UINT32, o.steps),
    ggufEntry(QAT_KEYS.loss, STRING, o.loss),
    ggufEntry(QAT_KEYS.learningRate, FLOAT32, o.lr),
    ggufEntry(QAT_KEYS.seqLen, UINT32, o.seqLen),
    ggufEntry(QAT_KEYS.seed, UINT32, o.seed),
  ];
  const source = replacedSource(result.source, kept);
  const request: ExportRequest = { mode, precomputed: { tensors: precomputed, keys, method: 'qat' } };
  const plan = planExport(source, request);
  for (const t of plan.tensors) {
    if (t.type !== result.plan.tensors.find((u) => u.name === t.name)?.type) throw new Error(`QAT export: ${t.name} is ${t.type}, trained as another type`);
    if (t.converted && result.master.has(t.name) && !t.precomputed) throw new Error(`QAT export: no trained blocks for ${t.name}`);
  }
  return { source, plan };
}

/** The GGUF's bytes as a stream (exportGguf of qatExportPlan). */
export function qatGguf(result: QatResult, mode: PlanMode, options: ExportOptions = {}): AsyncGenerator<Uint8Array> {
  const { source, plan } = qatExportPlan(result, mode);
  return exportGguf(source, plan, options);
}
