// JSON for the CLI's --json output: 64-bit ints and numbers past 2^53 become decimal
// strings (docs/contracts.md), typed arrays become arrays, and NaN/±Infinity (possible in
// f32 metadata) become the strings "NaN", "Infinity", "-Infinity", which JSON lacks.
// Metadata arrays are written whole (a 32000-token vocabulary included): --json is for
// programs, which may need them; the human table abbreviates. Layout: objects indented,
// arrays of scalars on one line, short flat objects (a tensor record) on one line.

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);
const INLINE_OBJECT_CHARS = 160;

export function jsonSafeNumber(value: number | bigint): number | string {
  if (typeof value === 'bigint') return value <= MAX_EXACT && value >= -MAX_EXACT ? Number(value) : value.toString();
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) return BigInt(value).toString();
  return value;
}

type Plain = null | boolean | number | string | Plain[] | { [key: string]: Plain };

/** Converts to values JSON can hold exactly. */
export function toPlain(value: unknown): Plain {
  if (typeof value === 'number' || typeof value === 'bigint') return jsonSafeNumber(value);
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>, jsonSafeNumber);
  }
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Map) return toPlain(Object.fromEntries(value));
  if (typeof value === 'object') {
    const out: { [key: string]: Plain } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toPlain(v);
    return out;
  }
  return String(value);
}

const isScalar = (v: Plain) => v === null || typeof v !== 'object';

function format(value: Plain, indent: string, step: string): string {
  if (isScalar(value)) return JSON.stringify(value);
  const inner = indent + step;
  if (Array.isArray(value)) {
    if (value.every(isScalar)) return `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
    return `[\n${value.map((v) => inner + format(v, inner, step)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return '{}';
  const flat = entries.every(([, v]) => isScalar(v) || (Array.isArray(v) && v.every(isScalar)));
  if (flat) {
    const line = `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${format(v, '', '')}`).join(', ')}}`;
    if (line.length <= INLINE_OBJECT_CHARS) return line;
  }
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${format(v, inner, step)}`).join(',\n')}\n${indent}}`;
}

export function toJson(value: unknown, indent = 2): string {
  return format(toPlain(value), '', ' '.repeat(indent));
}
