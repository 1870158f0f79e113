// ModelIndex (formats/) -> ModelSummary (what the UI shows): serializable, no sources.
import { elementCount, type ModelIndex } from '../formats/model.ts';
import { hfTensorLayout } from '../convert/hf.ts';
import { SUPPORTED_ARCHITECTURES } from '../model/families/index.ts';
import type { ModelSummary } from './types.ts';

const MAX_SHOWN_ITEMS = 8;

function describeValue(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return v;
  if (ArrayBuffer.isView(v) || Array.isArray(v)) {
    // Only the first items are copied: a vocabulary holds hundreds of thousands.
    const all = v as ArrayLike<unknown> & { slice(start: number, end: number): ArrayLike<unknown> };
    const head = Array.from(all.slice(0, MAX_SHOWN_ITEMS)).map(describeValue).join(', ');
    return all.length > MAX_SHOWN_ITEMS ? `[${all.length} items: ${head}, …]` : `[${head}]`;
  }
  if (v && typeof v === 'object') return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)).slice(0, 400);
  return String(v);
}

export function summarizeModel(model: ModelIndex): ModelSummary {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(model.metadata)) metadata[k] = describeValue(v);
  const config = model.metadata.config as { architectures?: string[]; model_type?: string } | undefined;
  const architecture =
    (model.metadata['general.architecture'] as string | undefined) ?? config?.model_type ?? config?.architectures?.[0] ?? null;
  const tensors = model.tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: [...t.shape],
    params: elementCount(t),
    nbytes: t.nbytes,
    file: t.file,
  }));
  return {
    format: model.format,
    version: model.version ?? 0,
    files: model.files.map((f) => ({ name: f.source.name, size: f.source.size })),
    architecture,
    forwardPassRefusal: forwardPassRefusal(model),
    metadata,
    tensors,
    parameterCount: tensors.reduce((s, t) => s + t.params, 0),
    totalBytes: tensors.reduce((s, t) => s + t.nbytes, 0),
  };
}

/** Why the forward pass cannot run the model (its family is not one of src/model/families), or null. */
function forwardPassRefusal(model: ModelIndex): string | null {
  const supported = `the forward pass runs ${SUPPORTED_ARCHITECTURES.join(', ')}`;
  if (model.format === 'gguf') {
    const arch = model.metadata['general.architecture'];
    return typeof arch === 'string' && SUPPORTED_ARCHITECTURES.includes(arch) ? null : `general.architecture is ${JSON.stringify(arch ?? null)}: ${supported}.`;
  }
  try {
    // Safetensors run as their GGUF conversion (model/converted.ts): a family the converter claims.
    const layout = hfTensorLayout(model);
    return layout && SUPPORTED_ARCHITECTURES.includes(layout.arch) ? null : `no config.json of a family that converts (${supported}).`;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
