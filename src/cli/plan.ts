// `quantlab plan FILE... (--target-size SIZE | --target-bpw BPW) [--imatrix FILE]
//  [--damage kl|error] [-o PLAN.json] [--json]`: the per-tensor types that fit the target
// with the least damage (src/budget), beside the nearest llama.cpp presets (size,
// predicted and measured KL), bits per layer, and the llama-quantize command that makes
// the same file. `quantlab quantize FILE... -o OUT.gguf --plan PLAN.json` writes it.
import { readFile, writeFile } from 'node:fs/promises';
import { readImatrix } from '../formats/imatrix.ts';
import { FormatError } from '../formats/errors.ts';
import { fileSource } from '../formats/node-source.ts';
import { type BudgetPlan, type BudgetTarget, llamaQuantizeCommand, parseSize } from '../budget/budget.ts';
import type { BudgetSession, PlanReport } from '../budget/session.ts';
import { exportKlCache, importKlCache } from '../budget/sensitivity.ts';
import { budgetPlanJob, budgetScanJob } from '../engine/jobs/budget.ts';
import { uncancelled } from '../engine/jobs/job.ts';
import { Session } from '../engine/session.ts';
import { type Command, parseCommandLine, UsageError } from './command.ts';
import { openFiles } from './inspect.ts';
import { toJson } from './json.ts';

const USAGE =
  'quantlab plan FILE... (--target-size SIZE | --target-bpw BPW) [--imatrix FILE] [--damage kl|error] [--scan-cache FILE] [-o PLAN.json] [--json]';

export const planCommand: Command = {
  name: 'plan',
  summary: 'choose a type per tensor that fits a file size (or bpw) with the least damage',
  usage: USAGE,
  async run(args, io) {
    const { positionals, values } = parseCommandLine(args, {
      'target-size': { type: 'string' },
      'target-bpw': { type: 'string' },
      imatrix: { type: 'string' },
      damage: { type: 'string' },
      'scan-cache': { type: 'string' },
      output: { type: 'string', short: 'o' },
      json: { type: 'boolean' },
    });
    const target = parseTarget(values['target-size'], values['target-bpw']);
    if (values.damage !== undefined && values.damage !== 'kl' && values.damage !== 'error') {
      throw new UsageError(`--damage must be kl or error, not '${values.damage}'`);
    }
    const session = new Session(null);
    await session.load(await openFiles(positionals));
    const model = session.loadedModel();
    const imatrix = values.imatrix === undefined ? undefined : await openImatrix(values.imatrix);
    const cacheFile = values['scan-cache'];
    // The scan's results (KL and error per tensor and type) from an earlier run, and saved after this one.
    if (cacheFile !== undefined) {
      const text = await readFile(cacheFile, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
      if (text !== null) {
        try {
          importKlCache(JSON.parse(text));
        } catch (e) {
          throw new FormatError(cacheFile, 0, `the scan cache is not JSON (${(e as Error).message})`);
        }
      }
    }
    const scan = await budgetScanJob(session, { imatrix, damage: values.damage as 'kl' | 'error' | undefined }, uncancelled(progressLine(io)));
    if (cacheFile !== undefined) await writeFile(cacheFile, `${JSON.stringify(exportKlCache(model))}\n`);
    const { plan, json: planJson, report } = await budgetPlanJob(scan, { target, model: positionals[0].split('/').pop()! });
    const json = { ...planJson, measured: report.measured, presets: report.presets, layers: report.layers };
    if (values.output) await writeFile(values.output, `${toJson(json)}\n`);
    io.stdout(values.json ? `${toJson(json)}\n` : planText(scan, plan, report, positionals[0], values.output, values.imatrix));
    return 0;
  },
};

function progressLine(io: { stderr(t: string): void }) {
  let last = performance.now();
  return (p: { done: number; total: number; label: string }) => {
    const now = performance.now();
    if (now - last < 10_000) return;
    last = now;
    io.stderr(`plan: sensitivity scan ${p.done}/${p.total}: ${p.label}\n`);
  };
}

export function parseTarget(size: string | undefined, bpw: string | undefined): BudgetTarget {
  if ((size === undefined) === (bpw === undefined)) throw new UsageError('give one of --target-size SIZE or --target-bpw BPW');
  if (size !== undefined) {
    try {
      return { bytes: parseSize(size) };
    } catch (e) {
      throw new UsageError(`--target-size: ${(e as Error).message}`);
    }
  }
  const b = Number(bpw);
  if (!Number.isFinite(b) || b <= 0) throw new UsageError(`--target-bpw must be a positive number, not '${bpw}'`);
  return { bpw: b };
}

async function openImatrix(path: string) {
  const source = await fileSource(path).catch((error: NodeJS.ErrnoException) => {
    throw new FormatError(path, 0, `cannot open the importance matrix (${error.code ?? error.message})`);
  });
  return { matrix: await readImatrix(source), fileArgument: path };
}

function planText(s: BudgetSession, plan: BudgetPlan, r: PlanReport, input: string, output?: string, imatrixFile?: string): string {
  const what = s.kind === 'kl' ? 'KL' : 'error';
  const e = (x: number | null) => (x === null || !Number.isFinite(x) ? '-' : x.toExponential(3));
  const lines: string[] = [];
  const target = 'bytes' in plan.target ? `${plan.target.bytes} bytes` : `${plan.target.bpw} bpw`;
  lines.push(`plan for ${target}: ${plan.bytes} bytes, ${plan.bpw.toFixed(3)} bpw, predicted ${what} ${e(plan.damage)}` +
    (r.measured ? `, measured KL ${e(r.measured.kl_mean)} (top-1 ${(100 * r.measured.top1_agree).toFixed(1)}%, ${r.measured.positions} positions)` : ''));
  lines.push('', 'tensor types:');
  const w = Math.max(...plan.tensors.map((t) => t.name.length));
  for (const t of plan.tensors) lines.push(`  ${t.name.padEnd(w)}  ${t.type.padEnd(6)}  ${String(t.bytes).padStart(10)}  ${e(t.damage)}`);
  lines.push('', 'bits per weight by layer:');
  for (const l of r.layers) lines.push(`  ${l.group.padEnd(16)} ${l.bpw.toFixed(3)}`);
  lines.push('', `presets (predicted ${what}; measured KL for the nearest):`);
  for (const p of r.presets) {
    lines.push(`  ${p.nearest ? '*' : ' '} ${p.preset.padEnd(7)} ${String(p.bytes).padStart(12)} bytes  ${p.bpw.toFixed(3)} bpw  predicted ${e(p.predicted)}  measured ${e(p.measured_kl)}`);
  }
  const gguf = /\.gguf$/i.test(input);
  lines.push('', 'the same file with llama.cpp:', `  ${llamaQuantizeCommand(plan, gguf ? input : 'MODEL-F32.gguf', 'OUT.gguf', imatrixFile)}`);
  if (!gguf) lines.push('  (MODEL-F32.gguf: the model as llama.cpp\'s convert_hf_to_gguf.py --outtype f32 writes it, or quantlab quantize --type f32)');
  if (output) lines.push('', `plan written to ${output} (quantlab quantize ${input} -o OUT.gguf --plan ${output})`);
  return `${lines.join('\n')}\n`;
}
