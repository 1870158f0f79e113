// The loaded model as llama.cpp's quantizer sees it (GGUF names and keys; a safetensors Llama
// under the names convert_hf_to_gguf.py gives), with the file tensor behind each name: what
// the plan summary (Engine.plan) and the plan's errors (jobs/compare.ts) read.
import type { ModelIndex, ModelTensor } from '../formats/model.ts';
import { llamaConfig } from '../model/llama.ts';
import { ggufView } from '../model/weights.ts';
import type { Session } from './session.ts';

export function planView(session: Session): { view: ModelIndex; fileTensor: (name: string) => ModelTensor } {
  const model = session.loadedModel();
  if (model.format === 'gguf') return { view: model, fileTensor: (name) => session.tensor(name) };
  const config = llamaConfig(model);
  const sourceName = new Map(config.ggufNames);
  return { view: ggufView(model, config), fileTensor: (name) => session.tensor(sourceName.get(name)!) };
}
