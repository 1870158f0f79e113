// One entry point for a model's tokenizer from its GGUF metadata: the kind of vocabulary
// (tokenizer.ggml.model) picks the implementation, as llama_vocab::impl::load does.
//   "llama" -> SentencePiece (tokenizer.ts; Llama 2, Mistral 7B, Phi-3, Gemma)
//   "gpt2"  -> byte-level BPE (tokenizer-bpe.ts; Llama 3, Qwen2/2.5/3, SmolLM, GPT-2...)

import { BpeTokenizer, bpeVocabFromGguf } from './tokenizer-bpe.ts';
import { SpmTokenizer, spmVocabFromGguf, type Tokenizer } from './tokenizer.ts';

/** The tokenizer of a GGUF (metadata as formats/gguf/metadata.ts metadataToObject gives it). */
export function tokenizerFromGguf(metadata: Readonly<Record<string, unknown>>): Tokenizer {
  const model = metadata['tokenizer.ggml.model'];
  if (model === 'llama') return new SpmTokenizer(spmVocabFromGguf(metadata));
  if (model === 'gpt2') return new BpeTokenizer(bpeVocabFromGguf(metadata));
  if (model === undefined) throw new Error('tokenizer.ggml.model is missing: the GGUF has no vocabulary');
  throw new Error(`tokenizer.ggml.model is ${JSON.stringify(model)}: only SentencePiece ('llama') and byte-level BPE ('gpt2') vocabularies are supported`);
}
