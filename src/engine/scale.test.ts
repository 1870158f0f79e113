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
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { dequantizeGgml, quantType } from '../quant/types.ts';
import { STAMP_BYTES, llamaConfigJson, writeSparseLlamaGguf, writeSparseLlamaSafetensors, type SparseSafetensors } from '../testing/sparse-model.ts';
import { exportSourceFromModel, planExport, type ExportRequest } from './export.ts';

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
  exported: { bytes: number; rssPeakBytes: number } | null;
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
    const report = await runChild([ggufPath, '--tensor', COMPARED, '--export', out]);

    const model = await loadModel([await fileSource(ggufPath)]);
    expect(report.format).toBe('gguf');
    expect(report.tensorCount).toBe(layout.tensors.length);
    expect(report.parameterCount).toBe(layout.tensors.reduce((n, t) => n + t.ne.reduce((a, b) => a * b, 1), 0));
    expect(report.compare.map((r) => [r.type, r.bytes])).toEqual([['q8_0', (4096 * 4096 / 32) * 34], ['q4_K', (4096 * 4096 / 256) * 144]]);
    expect(report.compare[0].rmse).toBeGreaterThan(0);
    expect(report.compare[1].rmse).toBeGreaterThan(report.compare[0].rmse);
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
    expect(report.maxRssBytes).toBeLessThan(MAX_RSS_BYTES);
  }, 120_000);
});
