// Where two GGUF files first differ, in words: "byte 1234: header, value of key
// general.file_type" or "byte 99000: data of tensor blk.0.attn_q.weight (+160)". The
// regions come from the layout of one of the files (ours), so a failing byte-for-byte
// comparison says which key, tensor info or tensor is wrong. Test support only.
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { GGUF_NUMERIC_TYPES, type GgufArray, type GgufValue } from '../formats/gguf/metadata.ts';
import type { GgufLayout } from '../formats/gguf/write.ts';

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length;

function valueBytes(type: number, value: GgufValue): number {
  if (type === GGUF_VALUE_TYPE.STRING) return 8 + utf8Bytes(value as string);
  if (type === GGUF_VALUE_TYPE.BOOL) return 1;
  if (type === GGUF_VALUE_TYPE.ARRAY) {
    const a = value as GgufArray;
    const items = a.items as readonly GgufValue[];
    let n = 4 + 8;
    for (let i = 0; i < items.length; i++) n += valueBytes(a.itemType, items[i]);
    return n;
  }
  return GGUF_NUMERIC_TYPES.get(type as never)!.size;
}

/** [start, end, what] for every part of the file, in order. */
function regions(layout: GgufLayout): [number, number, string][] {
  const out: [number, number, string][] = [[0, 24, 'header: magic, version, tensor and key counts']];
  let at = 24;
  for (const e of layout.metadata) {
    const keyEnd = at + 8 + utf8Bytes(e.key) + 4;
    out.push([at, keyEnd, `header: key name/type of ${e.key}`]);
    at = keyEnd + valueBytes(e.type, e.value);
    out.push([keyEnd, at, `header: value of key ${e.key}`]);
  }
  for (const t of layout.tensors) {
    const end = at + 8 + utf8Bytes(t.name) + 4 + 8 * t.ne.length + 4 + 8;
    out.push([at, end, `header: tensor info of ${t.name}`]);
    at = end;
  }
  out.push([at, layout.dataOffset, 'header: padding before the data']);
  layout.tensors.forEach((t, i) => {
    const start = layout.dataOffset + t.offset;
    const next = i + 1 < layout.tensors.length ? layout.dataOffset + layout.tensors[i + 1].offset : layout.totalBytes;
    out.push([start, next, `data of tensor ${t.name}`]);
  });
  return out;
}

/** null if the files are identical; else where they first differ. */
export function firstDifference(ours: Uint8Array, theirs: Uint8Array, layout: GgufLayout): string | null {
  const n = Math.min(ours.length, theirs.length);
  let i = 0;
  while (i < n && ours[i] === theirs[i]) i++;
  if (i === n && ours.length === theirs.length) return null;
  const region = regions(layout).find(([start, end]) => i >= start && i < end);
  const where = region ? `${region[2]} (+${i - region[0]})` : 'past the end of our layout';
  return `files differ at byte ${i} of ${ours.length} (ours) / ${theirs.length} (llama.cpp): ${where}`;
}
