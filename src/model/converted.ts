// The forward pass reads GGUF names and metadata (families/*). A safetensors checkpoint it
// cannot read directly (every family but plain Llama: Qwen, Gemma, Phi-3, Llama 3 with its
// llama3 rope scaling) is converted as an export would convert it (src/convert convertHf,
// tokenizer.json through hfTokenizerToGguf) and read back from memory, so that eval and
// the Model output tab run it exactly as llama.cpp would run the converted file. The
// conversion keeps the checkpoint's dtype (outtype 'auto': BF16 stays BF16), so memory
// holds one copy of the weights.
import { collectBytes, memorySource } from '../formats/bytes.ts';
import { type ModelIndex, loadModel } from '../formats/model.ts';
import { convertHf } from '../convert/hf.ts';
import { writeSourceGguf } from '../convert/source-model.ts';
import { modelConfig } from './families/index.ts';
import { hfTokenizerToGguf } from './tokenizer-hf.ts';

/** The model as the forward pass reads it: a GGUF or readable safetensors as they are, others converted in memory. */
export async function forwardModel(model: ModelIndex): Promise<ModelIndex> {
  if (model.format === 'gguf' || readsDirectly(model)) return model;
  const converted = await convertHf(model, { hfTokenizer: hfTokenizerToGguf });
  if (!converted.runnable) throw new Error(`the checkpoint cannot run: ${converted.warnings.join('; ')}`);
  const name = `${model.tensors[0]?.file.replace(/\.safetensors$/i, '') ?? 'model'}.converted.gguf`;
  return loadModel([memorySource(await collectBytes(writeSourceGguf(converted)), name)]);
}

function readsDirectly(model: ModelIndex): boolean {
  try {
    modelConfig(model);
    return true;
  } catch {
    return false; // the conversion says what is wrong, if anything is
  }
}
