// A GGUF holding one tensor of each sub-4-bit type (iq1_s ... iq3_s, nvfp4, q1_0, q2_0), made
// by the type table's codecs (ggml_quantize_chunk's bytes: peer-sub4bit.test.ts; calling ggml
// here would cost its minute-long grid set-up for iq1_s): it opens, and every tensor reads back through the app's
// decode path (readTensorF32 with dequantizeGgml, i.e. the type table) as ggml's
// dequantize_row_* floats, bit for bit.
import { describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { loadModel, readTensorF32 } from '../formats/model.ts';
import { planGguf, writeGguf } from '../formats/gguf/write.ts';
import { bits, ggmlDequantize, importanceFor, makeRows } from './codecs/testing.ts';
import { dequantizeGgml, quantTypeByGgmlId } from './types.ts';

const NEW_TYPES = [16, 17, 18, 19, 21, 22, 29, 40, 41, 42];
const ROW = 512;
const ROWS = 3;

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('a GGUF with every new sub-4-bit type', () => {
  it('opens, and each tensor decodes through the type table as ggml decodes it', async () => {
    const x = makeRows('outliers', 11, ROWS, ROW);
    const data = NEW_TYPES.map((t) => quantTypeByGgmlId(t)!.codec.encode(x, ROW, importanceFor(11, ROW)));
    const layout = planGguf({
      metadata: [],
      tensors: NEW_TYPES.map((type) => ({ name: `w.${quantTypeByGgmlId(type)!.id}`, type, ne: [ROW, ROWS] })),
    });
    const file = await collect(writeGguf(layout, (_, i) => data[i]));
    const model = await loadModel([memorySource(file, 'sub4bit.gguf')]);
    expect(model.tensors.map((t) => t.name)).toEqual(NEW_TYPES.map((t) => `w.${quantTypeByGgmlId(t)!.id}`));
    for (const [i, tensor] of model.tensors.entries()) {
      const type = quantTypeByGgmlId(NEW_TYPES[i])!;
      const floats = await readTensorF32(model, tensor, { dequantize: dequantizeGgml });
      expect(bits(floats), tensor.name).toEqual(bits(ggmlDequantize(type.id, data[i], x.length)));
    }
  });
});
