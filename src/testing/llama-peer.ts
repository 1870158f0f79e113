// The reference peer for tests: the real llama.cpp that ships prebuilt inside
// @node-llama-cpp/linux-x64 (see docs/contracts.md), called through koffi.
// - llamaQuantize: llama-quantize's own output file for any input GGUF and preset, with
//   its options (--pure, --tensor-type, --imatrix, --output-tensor-type, ...).
// - ggmlQuantizeChunk: ggml's quantizer on any floats (what llama-quantize calls per tensor).
// Struct layout from the squashed llama.cpp source that node-llama-cpp bundles
// (node_modules/node-llama-cpp/llama/gitRelease.bundle: include/llama.h).
// Test support only: nothing under src/ outside tests imports this.
import koffi from 'koffi';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ggmlTypeByName } from '../formats/gguf/constants.ts';

/** Folder of the prebuilt libllama/libggml for this platform. */
export function llamaBinDir(): string {
  // The package exports no paths: find it in node_modules as Node's resolution would.
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const bins = join(dir, 'node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64');
    if (existsSync(bins)) return bins;
  }
  throw new Error('llama-peer: @node-llama-cpp/linux-x64 is not installed (npm i -D node-llama-cpp@3.22.1)');
}

/** llama.cpp's llama_ftype numbers (= general.file_type), by llama-quantize's preset name. */
export const LLAMA_FTYPE: Readonly<Record<string, number>> = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10, Q3_K_S: 11, Q3_K_M: 12,
  Q3_K_L: 13, Q4_K_S: 14, Q4_K_M: 15, Q5_K_S: 16, Q5_K_M: 17, Q6_K: 18, Q2_K_S: 21, IQ4_NL: 25,
  IQ4_XS: 30, BF16: 32, TQ1_0: 36, TQ2_0: 37, MXFP4_MOE: 38,
  IQ2_XXS: 19, IQ2_XS: 20, IQ3_XS: 22, IQ3_XXS: 23, IQ1_S: 24, IQ3_S: 26, IQ3_M: 27, IQ2_S: 28, IQ2_M: 29,
  IQ1_M: 31, NVFP4: 39, Q1_0: 40, Q2_0: 41,
};

const GGML_TYPE_COUNT = 43;

interface Lib {
  quantize: (inp: string, out: string, params: unknown) => number;
  defaultParams: () => Record<string, unknown>;
  quantizeChunk: (type: number, src: Float32Array, dst: Uint8Array, start: bigint, nrows: bigint, nPerRow: bigint, imatrix: Float32Array | null) => bigint;
  rowSize: (type: number, ne: bigint) => bigint;
  backendInit: () => void;
  logSet: (cb: unknown, data: null) => void;
}

let lib: Lib | undefined;
/** llama.cpp's error log since the last llamaQuantize call began. */
let errorLog = '';

function load(): Lib {
  if (lib) return lib;
  const dir = llamaBinDir();
  // libggml-base first: libllama resolves its ggml symbols against the loaded copies.
  const ggmlBase = koffi.load(join(dir, 'libggml-base.so'));
  koffi.load(join(dir, 'libggml.v0.5.0.so'));
  const llama = koffi.load(join(dir, 'libllama.v0.5.0.so'));
  // Registered by name: the function signatures below refer to it.
  koffi.struct('llama_model_quantize_params', {
    nthread: 'int32_t',
    ftype: 'int',
    output_tensor_type: 'int',
    token_embedding_type: 'int',
    allow_requantize: 'bool',
    quantize_output_tensor: 'bool',
    only_copy: 'bool',
    pure: 'bool',
    keep_split: 'bool',
    dry_run: 'bool',
    imatrix: 'void *',
    kv_overrides: 'void *',
    tt_overrides: 'void *',
    prune_layers: 'void *',
    max_buf_size: 'size_t',
  });
  // Arrays that llama_model_quantize_params points to (llama.h), ended by a null name.
  koffi.struct('llama_model_tensor_override', { pattern: 'const char *', type: 'int' });
  koffi.struct('llama_model_imatrix_data', { name: 'const char *', data: 'float *', size: 'size_t' });
  koffi.struct('llama_model_kv_override', {
    tag: 'int',
    key: koffi.array('char', 128, 'String'),
    value: koffi.union('llama_model_kv_override_value', {
      val_i64: 'int64_t', val_f64: 'double', val_bool: 'bool', val_str: koffi.array('char', 128, 'String'),
    }),
  });
  const LogCallback = koffi.proto('void llama_peer_log(int level, const char *text, void *data)');
  lib = {
    quantize: llama.func('uint32_t llama_model_quantize(const char *, const char *, const llama_model_quantize_params *)') as Lib['quantize'],
    defaultParams: llama.func('llama_model_quantize_params llama_model_quantize_default_params()') as Lib['defaultParams'],
    quantizeChunk: ggmlBase.func('size_t ggml_quantize_chunk(int, const float *, _Out_ uint8_t *, int64_t, int64_t, int64_t, const float *)') as Lib['quantizeChunk'],
    rowSize: ggmlBase.func('size_t ggml_row_size(int, int64_t)') as Lib['rowSize'],
    backendInit: llama.func('void llama_backend_init()') as Lib['backendInit'],
    logSet: llama.func('llama_log_set', 'void', [koffi.pointer(LogCallback), 'void *']) as Lib['logSet'],
  };
  // Quiet, but keep the errors (ggml_log_level: 4 = ERROR, 5 = CONT) for the thrown message.
  let lastLevel = 0;
  const keepErrors = koffi.register((level: number, text: string) => {
    if (level !== 5) lastLevel = level;
    if (lastLevel === 4) errorLog += text;
  }, koffi.pointer(LogCallback));
  lib.logSet(keepErrors, null);
  lib.backendInit();
  return lib;
}

export interface QuantizeOptions {
  /** llama-quantize --pure: every quantizable tensor in the preset's base type. */
  pure?: boolean;
  allowRequantize?: boolean;
  threads?: number;
  /** llama-quantize --tensor-type PATTERN=TYPE (pattern used as given: the CLI lower-cases it). */
  overrides?: readonly { pattern: string; type: string }[];
  /** llama-quantize --imatrix: importance per column, by tensor name (ne0 x ne2 values). */
  imatrix?: ReadonlyMap<string, Float32Array>;
  /** --output-tensor-type / --token-embedding-type (ggml type names). */
  outputTensorType?: string;
  tokenEmbeddingType?: string;
  /** --leave-output-tensor. */
  leaveOutputTensor?: boolean;
  /**
   * llama_model_quantize_params.kv_overrides, set on the output after general.file_type:
   * llama-quantize passes its quantize.imatrix.* keys this way (int -> u32, number -> f32).
   */
  kvOverrides?: readonly { key: string; value: string | boolean | { int: number } | { float: number } }[];
}

/** llama_model_kv_override_type. */
const KV_OVERRIDE_TAG = { INT: 0, FLOAT: 1, BOOL: 2, STR: 3 } as const;

function kvOverrideStruct(o: NonNullable<QuantizeOptions['kvOverrides']>[number]) {
  const v = o.value;
  if (typeof v === 'string') return { tag: KV_OVERRIDE_TAG.STR, key: o.key, value: { val_str: v } };
  if (typeof v === 'boolean') return { tag: KV_OVERRIDE_TAG.BOOL, key: o.key, value: { val_bool: v } };
  if ('int' in v) return { tag: KV_OVERRIDE_TAG.INT, key: o.key, value: { val_i64: BigInt(v.int) } };
  return { tag: KV_OVERRIDE_TAG.FLOAT, key: o.key, value: { val_f64: v.float } };
}

function ggmlTypeId(name: string): number {
  const t = ggmlTypeByName(name);
  if (!t) throw new Error(`llama-peer: unknown ggml type ${name}`);
  return t.id;
}

/** Run llama.cpp's llama_model_quantize(input, output, preset). Throws on failure. */
export function llamaQuantize(input: string, output: string, preset: string, options: QuantizeOptions = {}): void {
  const ftype = LLAMA_FTYPE[preset.toUpperCase()];
  if (ftype === undefined) throw new Error(`llama-peer: unknown preset ${preset}`);
  const l = load();
  const allocated: unknown[] = [];
  const alloc = (type: string, n: number) => {
    const ptr = koffi.alloc(type, n);
    allocated.push(ptr);
    return ptr;
  };
  try {
    let ttOverrides = null;
    if (options.overrides?.length) {
      const list = [...options.overrides.map((o) => ({ pattern: o.pattern, type: ggmlTypeId(o.type) })), { pattern: null, type: 0 }];
      ttOverrides = alloc('llama_model_tensor_override', list.length);
      koffi.encode(ttOverrides, 'llama_model_tensor_override', list, list.length);
    }
    let imatrix = null;
    if (options.imatrix?.size) {
      const list: { name: string | null; data: unknown; size: number }[] = [];
      for (const [name, values] of options.imatrix) {
        const data = alloc('float', values.length);
        koffi.encode(data, 'float', Array.from(values), values.length);
        list.push({ name, data, size: values.length });
      }
      list.push({ name: null, data: null, size: 0 });
      imatrix = alloc('llama_model_imatrix_data', list.length);
      koffi.encode(imatrix, 'llama_model_imatrix_data', list, list.length);
    }
    let kvOverrides = null;
    if (options.kvOverrides?.length) {
      // Ended by an entry whose key is empty.
      const list = [...options.kvOverrides.map(kvOverrideStruct), { tag: 0, key: '', value: { val_i64: 0n } }];
      kvOverrides = alloc('llama_model_kv_override', list.length);
      koffi.encode(kvOverrides, 'llama_model_kv_override', list, list.length);
    }
    const params = {
      ...l.defaultParams(),
      nthread: options.threads ?? 2,
      ftype,
      output_tensor_type: options.outputTensorType ? ggmlTypeId(options.outputTensorType) : GGML_TYPE_COUNT,
      token_embedding_type: options.tokenEmbeddingType ? ggmlTypeId(options.tokenEmbeddingType) : GGML_TYPE_COUNT,
      allow_requantize: options.allowRequantize ?? true,
      quantize_output_tensor: !(options.leaveOutputTensor ?? false),
      pure: options.pure ?? false,
      imatrix,
      kv_overrides: kvOverrides,
      tt_overrides: ttOverrides,
    };
    errorLog = '';
    const rc = l.quantize(input, output, params);
    if (rc !== 0) throw new Error(`llama_model_quantize(${input}, ${preset}) failed with ${rc}: ${errorLog.trim()}`);
  } finally {
    for (const ptr of allocated) koffi.free(ptr);
  }
}

/** ggml_quantize_chunk on `rows` rows of `nPerRow` floats: ggml's own bytes. */
export function ggmlQuantizeChunk(ggmlType: number, src: Float32Array, nPerRow: number, importance?: Float32Array): Uint8Array {
  const l = load();
  const rows = src.length / nPerRow;
  const dst = new Uint8Array(Number(l.rowSize(ggmlType, BigInt(nPerRow))) * rows);
  const written = l.quantizeChunk(ggmlType, src, dst, 0n, BigInt(rows), BigInt(nPerRow), importance ?? null);
  if (Number(written) !== dst.length) throw new Error(`ggml_quantize_chunk wrote ${written} of ${dst.length} bytes`);
  return dst;
}
