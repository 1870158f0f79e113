// The files a training run writes, produced here once for both callers: `quantlab train -o`
// (src/cli/train.ts) and the page's Training tab (engine/jobs/train.ts), so that the page's
// downloads are byte for byte the CLI's files for the same options.
import type { ModelIndex } from '../formats/model.ts';
import type { PlanMode } from '../quant/presets.ts';
import { qatGguf } from './export.ts';
import { loraGgufChunks } from './lora/gguf.ts';
import { encodePeft, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, peftBase } from './lora/peft.ts';
import type { QatResult } from './qat.ts';
import type { QloraResult } from './qlora.ts';

/** The QAT model's GGUF as a stream (the export of the trained blocks, src/train/export.ts). */
export function qatFileChunks(result: QatResult, mode: PlanMode, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  return qatGguf(result, mode, { signal, measure: false });
}

/** The base model's general.name, which the PEFT config records as base_model_name_or_path. */
export function baseModelName(model: ModelIndex): string | undefined {
  const name = model.metadata['general.name'];
  return typeof name === 'string' ? name : undefined;
}

/** QLoRA's files: the GGUF LoRA adapter llama.cpp loads, and PEFT's two files (by their file names). */
export function qloraFiles(result: QloraResult, model: ModelIndex) {
  return {
    adapterChunks: (): AsyncGenerator<Uint8Array> => loraGgufChunks(result.adapter),
    peft: (): Record<typeof PEFT_WEIGHTS_FILE | typeof PEFT_CONFIG_FILE, Uint8Array> => {
      const { weights, config } = encodePeft(result.adapter, peftBase(result.config, result.adapter.architecture), baseModelName(model) ?? null);
      return { [PEFT_WEIGHTS_FILE]: weights, [PEFT_CONFIG_FILE]: new TextEncoder().encode(config) } as Record<typeof PEFT_WEIGHTS_FILE | typeof PEFT_CONFIG_FILE, Uint8Array>;
    },
  };
}
