// Named limits for reading untrusted model files, each with its reason (house rule 6).
// A value past a limit is refused with a FormatError before anything is allocated for it.

/** Header reads come in chunks of this size: big vocabularies make multi-MB headers,
 *  and reading them byte by byte from a Blob would be slow, all at once wasteful. */
export const READ_CHUNK_BYTES = 1 << 20;

/** safetensors header JSON: the reference implementation (huggingface/safetensors,
 *  tensor.rs MAX_HEADER_SIZE) refuses anything larger, so no valid file has more. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

/** config.json and model.safetensors.index.json: the index of a 1000-shard model with
 *  tens of thousands of tensors is a few MB; anything bigger is not one of these. */
export const MAX_JSON_FILE_BYTES = 64 << 20;

/** One GGUF string (key, value, tensor name). Chat templates and merges are KBs; ggml
 *  allows 1 GiB, but a string that big in a browser tab is an attack, not a model. */
export const MAX_STRING_BYTES = 64 << 20;

/** Elements of one GGUF metadata array. The largest real vocabularies (Gemma 3: 262,144
 *  tokens) and merge lists (~500k) fit many times over. */
export const MAX_ARRAY_LENGTH = 1 << 24;

/** Arrays nested in arrays: the spec allows it, ggml itself reads none; a bound keeps a
 *  hostile file from recursing the parser off the stack. */
export const MAX_ARRAY_NESTING = 8;

/** Metadata keys in one GGUF. Real files hold tens to hundreds. */
export const MAX_METADATA_COUNT = 1 << 20;

/** Tensors in one file. Real models hold hundreds to a few thousand (MoE models with
 *  unmerged experts: tens of thousands). */
export const MAX_TENSOR_COUNT = 1 << 20;

/** GGML_MAX_DIMS (ggml.h): a GGUF tensor has at most 4 dimensions. */
export const MAX_DIMS = 4;

/** GGML_MAX_NAME (ggml.h) is 64 bytes including the terminating NUL; ggml's loader
 *  refuses longer names, so a file with one would not load in llama.cpp. */
export const MAX_TENSOR_NAME_BYTES = 63;

/** Dimensions of one safetensors tensor. PyTorch allows 64 dimensions. */
export const MAX_SAFETENSORS_DIMS = 64;

/** GGUF general.alignment: a power of two; above 1 MiB the padding alone would be absurd. */
export const MAX_GGUF_ALIGNMENT = 1 << 20;
