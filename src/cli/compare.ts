// `quantlab compare FILE... --tensor NAME --types T,T,... [--pad] [--json] [--backend cpu|webgpu]`:
// one tensor quantized into each type, with the error metrics of docs/contracts.md.
import { compareJob } from '../engine/jobs/compare.ts';
import { uncancelled } from '../engine/jobs/job.ts';
import type { CompareResult } from '../engine/types.ts';
import { didYouMean } from '../formats/suggest.ts';
import { QUANT_TYPES, quantType } from '../quant/types.ts';
import { type Command, parseBackend, parseCommandLine, UsageError } from './command.ts';
import { openFiles } from './inspect.ts';
import { toJson } from './json.ts';
import { gpuField } from './gpu-json.ts';
import { openSession } from './session.ts';

export function parseTypes(list: string | undefined): string[] {
  if (!list) throw new UsageError('--types T,T,... is required');
  const ids = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of ids) if (!quantType(id)) throw new UsageError(`unknown type '${id}'${didYouMean(id, QUANT_TYPES.filter((t) => !t.activationOnly).map((t) => t.id))}`);
  return ids.map((id) => quantType(id)!.id);
}

export const compareCommand: Command = {
  name: 'compare',
  summary: 'quantize one tensor into several types and report the error of each',
  usage: 'quantlab compare FILE... --tensor NAME --types T,T,... [--pad] [--json] [--backend cpu|webgpu]',
  async run(args, io) {
    const { positionals, values } = parseCommandLine(args, {
      tensor: { type: 'string' },
      types: { type: 'string' },
      pad: { type: 'boolean' },
      json: { type: 'boolean' },
      backend: { type: 'string' },
    });
    if (!values.tensor) throw new UsageError('--tensor NAME is required');
    const types = parseTypes(values.types);
    const session = await openSession(parseBackend(values.backend));
    await session.load(await openFiles(positionals));
    const result = await compareJob(session, { tensor: values.tensor, types, pad: values.pad ?? false }, uncancelled());
    io.stdout(values.json ? `${toJson(compareJson(result))}\n` : compareText(result));
    return 0;
  },
};

/** The `compare --json` shape of docs/contracts.md (plus each result's backend, and `error` for a type that cannot apply). */
export function compareJson(r: CompareResult) {
  return {
    tensor: r.tensor,
    shape: r.shape,
    backend: r.backend,
    results: r.results.map((t) =>
      t.error
        ? { type: t.type, error: t.error }
        : {
            type: t.type,
            bpw: t.bpw,
            bytes: t.bytes,
            rmse: t.metrics.rmse,
            max_abs: t.metrics.maxAbs,
            mean_abs: t.metrics.meanAbs,
            snr_db: t.metrics.snrDb,
            cosine: t.metrics.cosine,
            backend: t.backend,
            // --pad: rows zero-padded to the type's block (bytes with the padding; not storable in GGUF as is).
            ...(t.padded ? { padded: { row_length: t.padded.rowLength, padded_row_length: t.padded.paddedRowLength } } : {}),
          },
    ),
    // A tensor above the compare job's MAX_COMPARE_VALUES is measured on evenly spaced rows.
    ...(r.sampledRows ? { sampled_rows: r.sampledRows } : {}),
    // On WebGPU: what the compare cost the GPU (docs/cli.md).
    ...gpuField(r.gpu),
  };
}

function compareText(r: CompareResult): string {
  const sampled = r.sampledRows ? `  (measured on ${r.sampledRows.rows} of ${r.sampledRows.of} rows, evenly spaced)` : '';
  const head = `${r.tensor}  [${r.shape.join(', ')}]${sampled}\n`;
  const cols = ['type', 'bpw', 'bytes', 'rmse', 'max_abs', 'snr_db', 'cosine', 'backend'];
  const rows = r.results.map((t) =>
    t.error
      ? [t.type, t.error]
      : [t.padded ? `${t.type}*` : t.type, t.bpw.toFixed(3), String(t.bytes), t.metrics.rmse.toExponential(4), t.metrics.maxAbs.toExponential(4), t.metrics.snrDb.toFixed(2), t.metrics.cosine.toFixed(6), t.backend],
  );
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.filter((x) => x.length > 2).map((x) => x[i].length)));
  const line = (cells: string[]) => (cells.length === 2 ? `${cells[0].padEnd(widths[0])}  ${cells[1]}` : cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  const padded = r.results.find((t) => t.padded && !t.error)?.padded;
  const note = padded ? `* rows of ${padded.rowLength} zero-padded to the type's block: bytes count the padding, the error is the tensor's own elements; not storable in GGUF as is\n` : '';
  return head + [line(cols), ...rows.map(line)].join('\n') + '\n' + note;
}
