// Models larger than memory: sparse files of Llama 3.1 8B (GGUF Q8_0 with an F16 output,
// 9.0 GB; safetensors BF16, 16.1 GB; src/testing/sparse-model.ts) are opened, listed, one
// tensor quantized, and the GGUF exported requantized through the streaming writer, in a
// child process whose peak memory (max RSS, from the kernel) is bounded:
// - the whole run, including a 16.8M-value tensor compared in two types: < 768 MiB;
// - while the 9 GB export streams through: < 512 MiB.
// The export is re-read with our reader and @huggingface/gguf and checked against the plan
// tensor by tensor: every copied tensor's stamp where it belongs, the requantized ones byte
// for byte. Only two small matrices are requantized (q8_0 -> q4_K); the rest is copied, so
// the run takes seconds, most of them reading 9 GB of holes.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gguf as hfGguf } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGML_TYPE } from '../formats/gguf/constants.ts';
import { metadataToObject } from '../formats/gguf/metadata.ts';
import { readGguf } from '../formats/gguf/read.ts';
import type { GgufLayout } from '../formats/gguf/write.ts';
import { loadModel, readTensorF32 } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { loadFastCodecs } from '../quant/fast/node.ts';
import { dequantizeGgml, quantType } from '../quant/types.ts';
import { STAMP_BYTES, llamaConfigJson, writeSparseLlamaGguf, writeSparseLlamaSafetensors, type SparseSafetensors } from '../testing/sparse-model.ts';
import { convertHfLlama } from '../convert/llama.ts';
import { exportSourceFromConverted, exportSourceFromModel } from '../export/source.ts';
import { planExport, type ExportRequest } from '../export/plan.ts';

const MiB = 1 << 20;
const MAX_RSS_BYTES = 768 * MiB;
const MAX_EXPORT_RSS_BYTES = 512 * MiB;
const CHILD = join(import.meta.dirname, '../testing/scale-child.ts');
const REQUANTIZED = ['blk.0.attn_k.weight', 'blk.0.attn_v.weight'];
const COMPARED = 'blk.0.attn_q.weight';
/** What scale-child.ts asks of the export (llama-quantize --type q8_0 --tensor-type ...). */
const REQUEST: ExportRequest = {
  mode: { type: 'q8_0' },
  overrides: [
    { pattern: '^output\\.weight$', type: 'f16' },
    { pattern: 'blk\\.0\\.attn_[kv]\\.weight', type: 'q4_K' },
  ],
};

interface ChildReport {
  maxRssBytes: number;
  format: string;
  files: { name: string; size: number }[];
  tensorCount: number;
  parameterCount: number;
  compare: { type: string; bytes: number; rmse: number; error: string | null }[];
  exported: { bytes: number; rssPeakBytes: number; ms: number } | null;
}

/** One line of the measured figures, for docs/measurements.md's limits section. */
function figures(what: string, r: ChildReport): string {
  const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
  const exp = r.exported ? `; export ${(r.exported.bytes / 1e9).toFixed(2)} GB in ${(r.exported.ms / 1000).toFixed(1)} s, RSS peak while streaming ${mib(r.exported.rssPeakBytes)}` : '';
  return `${what}: max RSS ${mib(r.maxRssBytes)}${exp}`;
}

async function runChild(args: string[]): Promise<ChildReport> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CHILD, ...args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildReport;
}

async function readAt(path: string, offset: number, length: number): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const bytes = new Uint8Array(length);
    await file.read(bytes, 0, length, offset);
    return bytes;
  } finally {
    await file.close();
  }
}

let dir: string;
let ggufPath: string;
let layout: GgufLayout;
let safetensors: SparseSafetensors;

beforeAll(async () => {
  await loadFastCodecs(); // built here if stale, so that the children only load them
  dir = mkdtempSync(join(tmpdir(), 'quantlab-scale-'));
  ggufPath = join(dir, 'Llama-3.1-8B-Q8_0.gguf');
  layout = await writeSparseLlamaGguf(ggufPath, [COMPARED, ...REQUANTIZED]);
  safetensors = await writeSparseLlamaSafetensors(join(dir, 'model.safetensors'), ['model.layers.0.self_attn.q_proj.weight']);
  writeFileSync(join(dir, 'config.json'), llamaConfigJson());
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a model larger than memory', () => {
  it('GGUF of 9 GB: open, list, quantize a tensor and export it requantized, in bounded memory; the export matches the plan', async () => {
    expect(statSync(ggufPath).size).toBeGreaterThan(8e9);
    // Sparse: the disk holds a few MB of it.
    expect(statSync(ggufPath).blocks * 512).toBeLessThan(64 * MiB);
    const out = join(dir, 'out.gguf');
    const report = await runChild([ggufPath, '--tensor', COMPARED, '--export', out, '--type', 'q8_0', ...REQUEST.overrides!.flatMap((o) => ['--override', `${String(o.pattern)}=${o.type}`])]);

    const model = await loadModel([await fileSource(ggufPath)]);
    expect(report.format).toBe('gguf');
    expect(report.tensorCount).toBe(layout.tensors.length);
    expect(report.parameterCount).toBe(layout.tensors.reduce((n, t) => n + t.ne.reduce((a, b) => a * b, 1), 0));
    expect(report.compare.map((r) => [r.type, r.bytes])).toEqual([['q8_0', (4096 * 4096 / 32) * 34], ['q4_K', (4096 * 4096 / 256) * 144]]);
    expect(report.compare[0].rmse).toBeGreaterThan(0);
    expect(report.compare[1].rmse).toBeGreaterThan(report.compare[0].rmse);
    console.log(figures('GGUF 9.0 GB', report));
    expect(report.maxRssBytes).toBeLessThan(MAX_RSS_BYTES);
    expect(report.exported!.rssPeakBytes).toBeLessThan(MAX_EXPORT_RSS_BYTES);

    // The file against the plan: size, header (our reader and @huggingface/gguf), tensors.
    const plan = planExport(exportSourceFromModel(model), REQUEST);
    expect(report.exported!.bytes).toBe(plan.layout.totalBytes);
    expect(statSync(out).size).toBe(plan.layout.totalBytes);
    const header = await readGguf(await fileSource(out));
    expect(header.tensors.map((t) => [t.name, t.typeName, t.ne, t.offset])).toEqual(
      plan.tensors.map((t, i) => [t.name, t.type, t.ne, plan.layout.tensors[i].offset]),
    );
    expect(metadataToObject(header.metadata)['general.file_type']).toBe(plan.fileType);
    const hf = await hfGguf(out, { allowLocalFile: true });
    expect(hf.tensorInfos.map((t) => [t.name, t.dtype, t.shape.map(Number), Number(t.offset)])).toEqual(
      plan.layout.tensors.map((t) => [t.name, t.type, t.ne, t.offset]),
    );
    expect(plan.tensors.filter((t) => t.converted).map((t) => t.name)).toEqual(REQUANTIZED);

    const source = new Map(model.tensors.map((t) => [t.name, t]));
    for (const [i, t] of plan.tensors.entries()) {
      const at = header.dataOffset + header.tensors[i].offset;
      const input = source.get(t.name)!;
      if (!t.converted) {
        // A copy: the stamp at the start of the tensor came through to the right place.
        const n = Math.min(STAMP_BYTES, t.nbytes);
        const [got, want] = await Promise.all([readAt(out, at, n), readAt(ggufPath, input.offset, n)]);
        expect(Buffer.from(got).equals(Buffer.from(want)), t.name).toBe(true);
        continue;
      }
      const values = dequantizeGgml(GGML_TYPE.Q8_0, await readAt(ggufPath, input.offset, input.nbytes), 4096 * 1024);
      const want = quantType('q4_K')!.codec.encode(values, 4096);
      expect(Buffer.from(await readAt(out, at, t.nbytes)).equals(Buffer.from(want)), t.name).toBe(true);
    }
  }, 240_000);

  it('safetensors of 16 GB with config.json: open, list and quantize a tensor in bounded memory', async () => {
    const path = join(dir, 'model.safetensors');
    expect(statSync(path).size).toBe(safetensors.size);
    expect(safetensors.size).toBeGreaterThan(16e9);
    const report = await runChild([path, join(dir, 'config.json'), '--tensor', 'model.layers.0.self_attn.q_proj.weight']);
    expect(report.format).toBe('safetensors');
    expect(report.files.map((f) => f.size)).toEqual([safetensors.size, statSync(join(dir, 'config.json')).size]);
    expect(report.tensorCount).toBe(safetensors.tensors.size);
    expect(report.parameterCount).toBe([...safetensors.tensors.values()].reduce((n, t) => n + t.nbytes / 2, 0));
    expect(report.compare.map((r) => r.bytes)).toEqual([(4096 * 4096 / 32) * 34, (4096 * 4096 / 256) * 144]);
    expect(report.compare[1].rmse).toBeGreaterThan(report.compare[0].rmse);
    console.log(figures('safetensors 16.1 GB', report));
    expect(report.maxRssBytes).toBeLessThan(MAX_RSS_BYTES);
  }, 120_000);

  it('safetensors -> GGUF export streams a slab at a time: a 2.1 GB f32 embedding never sits in memory whole', async () => {
    // Llama 3.1 8B's widths and vocabulary, one layer, tied embeddings (as Llama 3.2): 1.5 GB of BF16.
    const sub = join(dir, 'one-layer');
    mkdirSync(sub);
    const shape = { layers: 1, tied: true };
    const st = join(sub, 'model.safetensors');
    const written = await writeSparseLlamaSafetensors(st, ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.k_proj.weight'], 6, shape);
    writeFileSync(join(sub, 'config.json'), llamaConfigJson(shape));
    const embedding = written.tensors.get('model.embed_tokens.weight')!;
    expect(embedding.nbytes * 2).toBeGreaterThan(2e9); // as f32
    // Every matrix converted (llama.cpp applies --tensor-type only to quantized file types).
    const request: ExportRequest = { mode: { type: 'q8_0' }, overrides: [{ pattern: 'attn_q', type: 'q4_K' }] };
    const out = join(sub, 'out.gguf');
    const report = await runChild([st, join(sub, 'config.json'), '--tensor', 'model.layers.0.self_attn.k_proj.weight', '--export', out, '--type', 'q8_0', '--override', 'attn_q=q4_K']);
    console.log(figures('safetensors 1.5 GB -> GGUF', report));
    expect(report.maxRssBytes).toBeLessThan(MAX_RSS_BYTES);
    expect(report.exported!.rssPeakBytes).toBeLessThan(MAX_EXPORT_RSS_BYTES);

    const model = await loadModel([await fileSource(st), await fileSource(join(sub, 'config.json'))]);
    const converted = await convertHfLlama(model);
    const plan = planExport(exportSourceFromConverted(converted), request);
    expect(report.exported!.bytes).toBe(plan.layout.totalBytes);
    const header = await readGguf(await fileSource(out));
    expect(header.tensors.map((t) => [t.name, t.typeName, t.ne])).toEqual(plan.tensors.map((t) => [t.name, t.type, t.ne]));
    const hf = await hfGguf(out, { allowLocalFile: true });
    expect(hf.tensorInfos.map((t) => [t.name, Number(t.offset)])).toEqual(plan.layout.tensors.map((t) => [t.name, t.offset]));
    const at = (name: string) => header.dataOffset + header.tensors.find((t) => t.name === name)!.offset;
    expect(plan.tensors.filter((t) => t.converted).map((t) => t.type)).toEqual(['q8_0', 'q8_0', 'q8_0', 'q4_K', 'q8_0', 'q8_0', 'q8_0', 'q8_0']);
    // The embedding's first rows (its stamp) as q8_0, from the safetensors values read directly.
    const rows = await readTensorF32(model, model.tensors.find((t) => t.name === 'model.embed_tokens.weight')!, { elementCount: 4 * 4096 });
    const embd = quantType('q8_0')!.reference.encode(rows, 4096);
    expect(Buffer.from(await readAt(out, at('token_embd.weight'), embd.length)).equals(Buffer.from(embd))).toBe(true);
    // The permuted q and k, quantized slab by slab, equal the whole tensors quantized at once.
    for (const [name, type] of [['blk.0.attn_q.weight', 'q4_K'], ['blk.0.attn_k.weight', 'q8_0']] as const) {
      const whole = await converted.tensors.find((t) => t.name === name)!.readF32();
      const want = quantType(type)!.reference.encode(whole, 4096);
      expect(Buffer.from(await readAt(out, at(name), want.length)).equals(Buffer.from(want)), name).toBe(true);
    }
  }, 180_000);
});
