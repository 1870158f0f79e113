// `quantlab inspect FILE... [--json]`: what a model's files hold, headers only.

import type { ByteSource } from '../formats/bytes.ts';
import { FormatError } from '../formats/errors.ts';
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufValueTypeName } from '../formats/gguf/metadata.ts';
import { type ModelIndex, elementCount, loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { type CliIO, type Command, parseCommandLine } from './command.ts';
import { isHubArgument, openHubArgument } from './hub.ts';
import { jsonSafeNumber, toJson } from './json.ts';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'list the tensors and metadata of a model (one GGUF, or safetensors files)',
  usage: 'quantlab inspect FILE... [--json]',
  async run(args, io) {
    const { positionals, values } = parseCommandLine(args, { json: { type: 'boolean' } });
    const model = await loadModel(await openFiles(positionals, io));
    io.stdout(values.json ? `${toJson(inspectJson(model))}\n` : inspectText(model));
    return 0;
  },
};

/**
 * Opens every path; a missing or unreadable file is reported like a bad one. An
 * hf://org/name[@revision][/path] argument (or a huggingface.co URL) opens that model's
 * files on the Hub (hub.ts).
 */
export async function openFiles(paths: readonly string[], io?: CliIO): Promise<ByteSource[]> {
  const opened = await Promise.all(
    paths.map((path) =>
      isHubArgument(path, process.env.HF_ENDPOINT || undefined)
        ? openHubArgument(path, io)
        : fileSource(path).then(
            (source) => [source],
            (error: NodeJS.ErrnoException) => {
              throw new FormatError(path, 0, `cannot open the file (${error.code ?? error.message})`);
            },
          ),
    ),
  );
  return opened.flat();
}

/** The `inspect --json` shape of docs/contracts.md. */
export function inspectJson(model: ModelIndex) {
  return {
    format: model.format,
    version: model.version,
    metadata: model.metadata,
    tensors: model.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      file: t.file,
      offset: t.offset,
      nbytes: t.nbytes,
    })),
  };
}

// ---- human-readable output --------------------------------------------------------

const ARRAY_PREVIEW_ITEMS = 4;
const VALUE_WIDTH = 80;

export function inspectText(model: ModelIndex): string {
  const params = model.tensors.reduce((n, t) => n + elementCount(t), 0);
  const bytes = model.tensors.reduce((n, t) => n + t.nbytes, 0);
  const kind = model.format === 'gguf' ? `GGUF v${model.version}` : 'safetensors';
  const lines = [
    `${kind}: ${model.tensors.length} tensors, ${formatCount(params)} parameters, ${formatBytes(bytes)} of tensor data`,
    '',
    'files',
    ...table(model.files.map((f) => [f.source.name, f.role, formatBytes(f.source.size)])),
    '',
    'metadata',
    ...metadataLines(model),
    '',
    'tensors',
    ...table([
      ['name', 'dtype', 'shape', 'file', 'offset', 'nbytes'],
      ...model.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, t.file, String(t.offset), String(t.nbytes)]),
    ]),
  ];
  return `${lines.join('\n')}\n`;
}

function metadataLines(model: ModelIndex): string[] {
  if (model.ggufMetadata) {
    return table(model.ggufMetadata.map((e) => {
      const value = model.metadata[e.key];
      const type = typeof e.value === 'object' ? `${ggufValueTypeName(e.value.itemType)}[]` : ggufValueTypeName(e.type);
      const shown = e.type === GGUF_VALUE_TYPE.FLOAT32 ? shortestF32(value as number) : previewValue(value);
      return [e.key, type, shown];
    }));
  }
  return table(flattenObject(model.metadata).map(([key, value]) => [key, previewValue(value)]));
}

/** {a: {b: 1}} -> [['a.b', 1]], so config.json fields read one per line. */
function flattenObject(object: Readonly<Record<string, unknown>>, prefix = ''): [string, unknown][] {
  return Object.entries(object).flatMap(([key, value]): [string, unknown][] =>
    typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value)
      ? flattenObject(value as Record<string, unknown>, `${prefix}${key}.`)
      : [[`${prefix}${key}`, value]],
  );
}

/** The shortest decimal that reads back as the same f32 (1e-5, not 0.000009999999747378752). */
function shortestF32(x: number): string {
  for (let digits = 1; digits < 9; digits++) {
    const text = String(Number(x.toPrecision(digits)));
    if (Math.fround(Number(text)) === x) return text;
  }
  return String(x);
}

function previewValue(value: unknown): string {
  if (Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView))) {
    const items = Array.from(value as ArrayLike<unknown>);
    const show = value instanceof Float32Array ? (v: unknown) => shortestF32(v as number) : previewScalar;
    const shown = items.slice(0, ARRAY_PREVIEW_ITEMS).map(show).join(', ');
    return `[${items.length} items] ${shown}${items.length > ARRAY_PREVIEW_ITEMS ? ', ...' : ''}`;
  }
  return clip(previewScalar(value));
}

function previewScalar(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(clip(value));
  if (typeof value === 'number' || typeof value === 'bigint') return String(jsonSafeNumber(value));
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return previewValue(value);
  return toJson(value, 0);
}

function clip(text: string): string {
  return text.length > VALUE_WIDTH ? `${text.slice(0, VALUE_WIDTH - 1)}…` : text;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows.reduce<number[]>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), []);
  return rows.map((row) => `  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')}`);
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}
