// `quantlab calibrate`: llama-imatrix's statistics (checked against a direct computation of
// layer 0's attention input), its GGUF layout read back by our reader, and the real
// llama.cpp quantizer given the matrix from our file writing the same bytes as
// `quantlab quantize --imatrix OURFILE` (Q4_K_M, IQ4_XS).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CALIBRATION_STORY_TEXT as CALIBRATION_TEXT } from '../calibrate/calibration-text.ts';
import { readImatrix } from '../formats/imatrix.ts';
import { metadataToObject } from '../formats/gguf/metadata.ts';
import { readGguf } from '../formats/gguf/read.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { runInProcess } from '../cli/testing.ts';
import { buildGgufImatrix, toolImatrixOptions, toolImatrixValues, type ImatrixTestEntry } from '../testing/imatrix-file.ts';
import { llamaQuantize } from '../testing/llama-peer.ts';
import { openCalibrationModel } from './activations.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
let dir: string;
let ours: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-calibrate-'));
  ours = join(dir, 'stories.imatrix.gguf');
  const r = await runInProcess(['calibrate', STORIES, '--chunk', '64', '-o', ours], { stderrIsTTY: true });
  expect(r.code, r.stderr).toBe(0);
  // On a terminal: the live progress line, erased at the end.
  expect(r.stderr).toMatch(/^\r\x1b\[Kcalibrate: imatrix, chunk 1 of \d+/);
  expect(r.stderr.endsWith('\r\x1b[K')).toBe(true);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Our file through the GGUF parser only (not formats/imatrix.ts): tensors as llama-imatrix wrote them. */
async function rawEntries(path: string): Promise<{ entries: ImatrixTestEntry[]; meta: Record<string, unknown>; names: string[] }> {
  const src = await fileSource(path);
  const h = await readGguf(src);
  const f32 = async (t: (typeof h.tensors)[number]) => new Float32Array((await src.read(h.dataOffset + t.offset, t.nbytes)).slice().buffer);
  const entries: ImatrixTestEntry[] = [];
  for (const t of h.tensors.filter((x) => x.name.endsWith('.in_sum2'))) {
    const name = t.name.slice(0, -'.in_sum2'.length);
    const c = h.tensors.find((x) => x.name === `${name}.counts`)!;
    expect(c.ne).toEqual([1, 1]);
    expect(t.ne.length).toBe(2);
    entries.push({ name, sums: await f32(t), counts: Array.from(await f32(c)) });
  }
  return { entries, meta: metadataToObject(h.metadata), names: h.tensors.map((t) => t.name) };
}

describe('quantlab calibrate (llama-imatrix)', () => {
  it('writes llama-imatrix\'s GGUF: keys, sorted NAME.in_sum2/NAME.counts of every blk.* weight, read back by our reader', async () => {
    const { entries, meta, names } = await rawEntries(ours);
    expect(meta['general.type']).toBe('imatrix');
    expect(meta['imatrix.datasets']).toEqual(['quantlab built-in calibration text']);
    expect(meta['imatrix.chunk_size']).toBe(64);
    const tokens = (await openCalibrationModel(await loadModel([await fileSource(STORIES)]))).tokenize(CALIBRATION_TEXT).length;
    const chunks = Math.floor(tokens / 64);
    expect(chunks).toBeGreaterThanOrEqual(2);
    expect(meta['imatrix.chunk_count']).toBe(chunks);
    const weights = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'];
    const expected = Array.from({ length: 5 }, (_, i) => weights.map((w) => `blk.${i}.${w}.weight`)).flat().sort();
    expect(entries.map((e) => e.name)).toEqual(expected);
    expect(names.filter((n, i) => i % 2 === 1)).toEqual(expected.map((n) => `${n}.counts`));
    for (const e of entries) expect(e.counts).toEqual([chunks * 64]);

    const back = await readImatrix(await fileSource(ours));
    expect(back.entries.size).toBe(35);
    expect(back.chunkCount).toBe(chunks);
    expect(back.datasets).toEqual(['quantlab built-in calibration text']);
    expect(Array.from(back.entries.get('blk.0.ffn_down.weight')!)).toEqual(Array.from(toolImatrixValues(entries.find((e) => e.name === 'blk.0.ffn_down.weight')!)));
  });

  it('layer 0 attention input equals a direct computation: Σ over the chunks of (RMSNorm(embedding rows) · attn_norm)²', async () => {
    const model = await loadModel([await fileSource(STORIES)]);
    const cm = await openCalibrationModel(model);
    const tokens = cm.tokenize(CALIBRATION_TEXT);
    const embd = cm.weights.get('token_embd.weight')!;
    const norm = cm.weights.get('blk.0.attn_norm.weight')!;
    const d = cm.config.nEmbd;
    const sums = new Float64Array(d);
    const chunks = Math.floor(tokens.length / 64);
    for (let c = 0; c < chunks; c++) {
      for (let i = 0; i < 64; i++) {
        const tok = i === 0 ? cm.bosId! : tokens[c * 64 + i];
        const row = embd.subarray(tok * d, (tok + 1) * d);
        const ms = row.reduce((s, v) => s + v * v, 0) / d;
        for (let j = 0; j < d; j++) sums[j] += ((row[j] / Math.sqrt(ms + cm.config.rmsEps)) * norm[j]) ** 2;
      }
    }
    const { entries } = await rawEntries(ours);
    for (const w of ['attn_q', 'attn_k', 'attn_v']) {
      const got = entries.find((e) => e.name === `blk.0.${w}.weight`)!.sums;
      for (let j = 0; j < d; j++) expect(Math.abs(got[j] - sums[j])).toBeLessThanOrEqual(1e-5 * sums[j] + 1e-6);
    }
  });

  it('a safetensors checkpoint (HF names, NeoX RoPE on HF q/k order) gives the same matrix under llama.cpp names', async () => {
    const st = join(dir, 'st.imatrix.gguf');
    const files = ['stories260K.f32.safetensors', 'stories260K.config.json', 'tok512.model'].map((f) => join(FIXTURE_MODELS, f));
    const r = await runInProcess(['calibrate', ...files, '--chunk', '64', '-o', st]);
    expect(r.code, r.stderr).toBe(0);
    const a = await rawEntries(ours);
    const b = await rawEntries(st);
    expect(b.entries.map((e) => e.name)).toEqual(a.entries.map((e) => e.name));
    for (const [i, e] of b.entries.entries()) {
      expect(e.counts).toEqual(a.entries[i].counts);
      e.sums.forEach((v, j) => expect(Math.abs(v - a.entries[i].sums[j])).toBeLessThanOrEqual(1e-4 * Math.abs(a.entries[i].sums[j]) + 1e-4));
    }
  });

  it.each(['Q4_K_M', 'IQ4_XS'])('llama.cpp\'s quantizer given our imatrix writes the bytes `quantlab quantize --imatrix OURFILE` writes (%s)', async (preset) => {
    const out = join(dir, `ours-${preset}.gguf`);
    const r = await runInProcess(['quantize', STORIES, '-o', out, '--preset', preset, '--imatrix', ours]);
    expect(r.code, r.stderr).toBe(0);
    const { entries, meta } = await rawEntries(ours);
    const theirs = join(dir, `llama-${preset}.gguf`);
    llamaQuantize(STORIES, theirs, preset, toolImatrixOptions(ours, entries, (meta['imatrix.datasets'] as string[])[0], meta['imatrix.chunk_count'] as number));
    expect(readFileSync(out).equals(readFileSync(theirs))).toBe(true);
    // ...and the imatrix changed the bytes (it reached the codecs).
    const plain = join(dir, `plain-${preset}.gguf`);
    expect((await runInProcess(['quantize', STORIES, '-o', plain, '--preset', preset])).code).toBe(0);
    expect(readFileSync(out).subarray(-4096).equals(readFileSync(plain).subarray(-4096))).toBe(false);
  });

  it('refuses: a text too short for two chunks, a small --chunk, no -o; quantize refuses an imatrix of the wrong sizes or of another model', async () => {
    const short = await runInProcess(['calibrate', STORIES, '--chunk', '1024', '-o', join(dir, 'x.gguf')]);
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/the text has \d+ tokens; chunks of 1024 need at least 2048/);
    expect((await runInProcess(['calibrate', STORIES, '--chunk', '8', '-o', join(dir, 'x.gguf')])).stderr).toMatch(/--chunk must be a whole number of at least 16/);
    expect((await runInProcess(['calibrate', STORIES])).stderr).toMatch(/-o IMATRIX.gguf is required/);

    const { entries } = await rawEntries(ours);
    const wrongSize = join(dir, 'wrong-size.imatrix.gguf');
    writeFileSync(wrongSize, await buildGgufImatrix(entries.map((e) => (e.name === 'blk.1.ffn_down.weight' ? { ...e, sums: e.sums.subarray(0, 64) } : e)), ['x.txt'], 2));
    const a = await runInProcess(['quantize', STORIES, '-o', join(dir, 'a.gguf'), '--preset', 'Q4_K_M', '--imatrix', wrongSize]);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/imatrix size 64 is different from tensor size 172 for blk\.1\.ffn_down\.weight/);
    const wrongNames = join(dir, 'wrong-names.imatrix.gguf');
    writeFileSync(wrongNames, await buildGgufImatrix(entries.map((e) => ({ ...e, name: e.name.replace('blk.', 'model.layers.') })), ['x.txt'], 2));
    const b = await runInProcess(['quantize', STORIES, '-o', join(dir, 'b.gguf'), '--preset', 'Q4_K_M', '--imatrix', wrongNames]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/wrong-names\.imatrix\.gguf: .*none of its 35 entries names a tensor this model quantizes \(first: model\.layers\.0\.attn_k\.weight; .*another model\?/);
  });
});
