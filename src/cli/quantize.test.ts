// `quantlab quantize` end to end: the real launcher with its worker threads on a whole
// synthetic Llama, the WebGPU backend, one-line refusals, and the exported stories260K
// generating text in real llama.cpp (node-llama-cpp, one model per child process).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { expectQuantizeRefused, runInProcess } from './testing.ts';
import { SWIFTSHADER_ICD } from '../gpu/gpu-test-setup.ts';
import { llamaQuantize } from '../testing/llama-peer.ts';
import { childScript } from '../testing/child-script.ts';
import { buildGgufImatrix, toolImatrixOptions } from '../testing/imatrix-file.ts';
import { syntheticLlamaTensors, writeSyntheticLlama } from '../testing/synthetic-llama.ts';

const ROOT = join(import.meta.dirname, '../..');
const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
const run = promisify(execFile);

let dir: string;
let synthetic: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-quantize-'));
  synthetic = join(dir, 'llama.gguf');
  writeSyntheticLlama(synthetic, { nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, seed: 10 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** llama-quantize's own output for a preset. */
function llamaFile(input: string, preset: string, pure = false): Buffer {
  const out = join(dir, `llama-${preset}-${pure}.gguf`);
  llamaQuantize(input, out, preset, { pure });
  return readFileSync(out);
}

/** Table rows (tensor, type, bytes, rmse, backend) of the output. */
function tableRows(stdout: string): string[][] {
  const lines = stdout.trim().split('\n');
  return lines.slice(1, -1).map((l) => l.trim().split(/\s+/));
}

let refusals = 0;

describe('quantlab quantize', () => {
  it('the real launcher with worker threads: a whole synthetic Llama (rows of 256/768) -> Q4_K_M, byte-identical', async () => {
    const input = synthetic;
    const out = join(dir, 'ours-Q4_K_M.gguf');
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'bin/quantlab.js'), 'quantize', input, '-o', out, '--preset', 'q4_k_m', '--threads', '2'], { cwd: ROOT });
    expect(readFileSync(out).equals(llamaFile(input, 'Q4_K_M'))).toBe(true);
    expect(stderr).toBe(''); // a short run off a terminal prints no progress
    const rows = tableRows(stdout);
    expect(rows[0][0]).toBe('output.weight');
    expect(rows.map((r) => r[1])).toContain('f32->q4_K');
    expect(rows.map((r) => r[1])).toContain('f32->q6_K');
    expect(new Set(rows.map((r) => r[4]))).toEqual(new Set(['cpu', 'copy']));
    expect(stdout.trim().split('\n').at(-1)).toMatch(/ours-Q4_K_M\.gguf: \d+ bytes, 21 tensors/);
    expect(existsSync(`${out}.part`)).toBe(false);
  });

  it('on a terminal: a live progress line on stderr, erased before the table', async () => {
    const { code, stdout, stderr } = await runInProcess(['quantize', STORIES, '-o', join(dir, 'tty.gguf'), '--preset', 'Q8_0'], { stderrIsTTY: true });
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/^\r\x1b\[Kquantize: 0\/\d+ tensors, \d+% of \d+ bytes: /);
    expect(stderr.endsWith('\r\x1b[K')).toBe(true);
    expect(stdout).toMatch(/^tensor +type/);
  });

  it('--backend webgpu quantizes the types with GPU codecs on the GPU, byte-identical (stories260K -> Q4_K_M)', async () => {
    process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
    const out = join(dir, 'ours-gpu.gguf');
    const { code, stdout, stderr } = await runInProcess(['quantize', STORIES, '-o', out, '--preset', 'Q4_K_M', '--backend', 'webgpu']);
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/quantlab/); // (Dawn may log about its environment)
    expect(readFileSync(out).equals(llamaFile(STORIES, 'Q4_K_M'))).toBe(true);
    const backends = tableRows(stdout).map((r) => r[4]);
    expect(backends.filter((b) => b === 'webgpu')).toHaveLength(37); // q5_0, q8_0 and f16 tensors
    expect(backends.filter((b) => b === 'copy')).toHaveLength(11); // the norms
  });

  it.each([
    [['--type', 'nf4'], /--type: nf4 cannot be stored in GGUF .*GGUF types: f32 f16 bf16 q8_0/],
    [['--type', 'int8'], /--type: int8 cannot be stored in GGUF/],
    [['--preset', 'Q4_K_M', '--tensor-type', 'attn_v=fp8_e4m3'], /--tensor-type attn_v=fp8_e4m3: fp8_e4m3 cannot be stored in GGUF/],
    [['--type', 'q8_K'], /llama.cpp has no file type whose tensors are q8_K/],
    [['--preset', 'Q9_K'], /unknown preset Q9_K/],
    [['--preset', 'Q2_K_S'], /this quantization requires an imatrix! \(offending tensor: blk\.0\.attn_k\.weight, target type: q2_K\)/, 'synthetic'],
    [['--preset', 'Q4_0', '--type', 'q4_0'], /give one of --preset P or --type T/],
    [['--preset', 'Q4_0', '--imatrix', '/nonexistent/imatrix.gguf'], /nonexistent\/imatrix\.gguf: at byte 0: cannot open the importance matrix \(ENOENT\)/],
  ])('%j fails with one line and leaves no file', async (args, message, input = 'stories') => {
    await expectQuantizeRefused(input === 'stories' ? STORIES : synthetic, join(dir, `refused-${refusals++}.gguf`), args, message);
  });

  it('--imatrix (a GGUF imatrix) and --tensor-type: byte-identical to llama-quantize given the same, with its quantize.imatrix.* keys', async () => {
    const input = join(dir, 'compact.gguf');
    const options = { nLayer: 4, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, compactRows: 2, seed: 3 };
    writeSyntheticLlama(input, options);
    const entries = syntheticLlamaTensors(options)
      .filter((t) => t.ne.length === 2)
      .map((t, k) => ({ name: t.name, sums: Float32Array.from({ length: t.ne[0] }, (_, i) => 1 + ((i * 7 + k) % 13)), counts: [5] }));
    const imatrix = join(dir, 'compact.imatrix.gguf');
    writeFileSync(imatrix, await buildGgufImatrix(entries, ['calibration.txt'], 9));
    const out = join(dir, 'compact-Q2_K_S.gguf');
    const args = ['quantize', input, '-o', out, '--preset', 'Q2_K_S', '--imatrix', imatrix, '--tensor-type', 'ATTN_V=q5_K'];
    expect((await runInProcess(args)).code).toBe(0);
    const theirs = join(dir, 'compact-Q2_K_S.llama.gguf');
    llamaQuantize(input, theirs, 'Q2_K_S', {
      overrides: [{ pattern: 'attn_v', type: 'q5_K' }], // llama-quantize lower-cases the pattern
      ...toolImatrixOptions(imatrix, entries, 'calibration.txt', 9),
    });
    expect(readFileSync(out).equals(readFileSync(theirs))).toBe(true);
  });

  it('quantizes safetensors with config.json through the converter; refuses one without it, and writing over its input', async () => {
    const weights = join(FIXTURE_MODELS, 'stories260K.f32.safetensors');
    const st = await runInProcess(['quantize', weights, '-o', join(dir, 'st.gguf'), '--preset', 'Q8_0']);
    expect(st).toMatchObject({ code: 1, stderr: expect.stringMatching(/needs the model's config.json/) });
    const withConfig = await runInProcess(['quantize', weights, join(FIXTURE_MODELS, 'stories260K.config.json'), join(FIXTURE_MODELS, 'tok512.model'), '-o', join(dir, 'st.gguf'), '--preset', 'Q8_0']);
    expect(withConfig.code).toBe(0);
    const model = await loadModel([await fileSource(join(dir, 'st.gguf'))]);
    expect(model.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.dtype).toBe('q8_0');
    const self = await runInProcess(['quantize', STORIES, '-o', STORIES, '--preset', 'Q8_0']);
    expect(self).toMatchObject({ code: 1, stderr: expect.stringMatching(/the output file is one of the inputs/) });
  });
});

describe('exports of stories260K run in llama.cpp (node-llama-cpp)', () => {
  const generate = async (model: string) => {
    const { stdout } = await run(process.execPath, [childScript(join(ROOT, 'src/testing/generate-child.ts')), model, 'Once upon a time', '24'], { cwd: ROOT });
    return (JSON.parse(stdout.trim().split('\n').pop()!) as { text: string }).text;
  };

  it('Q8_0 continues exactly as llama-quantize\'s own Q8_0 file; Q4_K_M writes a story too', async () => {
    const q8 = join(dir, 'stories-Q8_0.gguf');
    const q4 = join(dir, 'stories-Q4_K_M.gguf');
    const theirs = join(dir, 'stories-Q8_0.llama.gguf');
    for (const [out, preset] of [[q8, 'Q8_0'], [q4, 'Q4_K_M']]) {
      expect((await runInProcess(['quantize', STORIES, '-o', out, '--preset', preset])).code).toBe(0);
    }
    llamaQuantize(STORIES, theirs, 'Q8_0');
    const [ours8, ours4, llama8] = await Promise.all([generate(q8), generate(q4), generate(theirs)]);
    expect(ours8).toBe(llama8);
    expect(ours8).toMatch(/^, there was a little girl named Lily/);
    expect(ours4.length).toBeGreaterThan(20);
    expect(ours4).toMatch(/^[ ,.]*[A-Za-z]+( [A-Za-z,.']+){4,}/); // words, not noise
  });
});
