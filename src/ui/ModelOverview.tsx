import type { GpuStatus, ModelSummary } from '../store/types.ts';
import { formatBytes, formatCount } from './format.ts';
import { TableTakeaway } from './Takeaway.tsx';

function dtypeBreakdown(model: ModelSummary): [string, number, number][] {
  const by = new Map<string, [number, number]>();
  for (const t of model.tensors) {
    const e = by.get(t.dtype) ?? [0, 0];
    by.set(t.dtype, [e[0] + t.params, e[1] + t.nbytes]);
  }
  return [...by].map(([d, [p, b]]) => [d, p, b] as [string, number, number]).sort((a, b) => b[2] - a[2]);
}

export function ModelOverview({ model, gpu }: { model: ModelSummary; gpu: GpuStatus | null }) {
  const facts: [string, string][] = [
    ['Format', `${model.format === 'gguf' ? 'GGUF' : 'safetensors'} v${model.version}`],
    ['Architecture', model.architecture ?? 'unknown'],
    ['Parameters', formatCount(model.parameterCount)],
    ['Size on disk', formatBytes(model.files.reduce((s, f) => s + f.size, 0))],
    ['Tensors', String(model.tensors.length)],
    ['Files', model.files.map((f) => f.name).join(', ')],
  ];
  return (
    <section className="panel overview" aria-label="Model overview">
      <dl className="facts">
        {facts.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
        <div>
          <dt>Compute</dt>
          <dd data-testid="backend">{gpu ? (gpu.backend === 'webgpu' ? `WebGPU · ${gpu.detail}` : `CPU fallback · ${gpu.detail}`) : 'probing…'}</dd>
        </div>
        {gpu?.cpuCodecs && (
          <div>
            <dt>CPU codecs</dt>
            <dd data-testid="cpu-codecs">{gpu.cpuCodecs === 'webassembly' ? 'WebAssembly (fast)' : 'TypeScript reference'}</dd>
          </div>
        )}
      </dl>
      <TableTakeaway label="Data types" data={() => ({ header: ['dtype', 'params', 'bytes'], rows: dtypeBreakdown(model) })} />
      <table className="dtypes" aria-label="Data types">
        <thead>
          <tr>
            <th>dtype</th>
            <th className="num">params</th>
            <th className="num">bytes</th>
          </tr>
        </thead>
        <tbody>
          {dtypeBreakdown(model).map(([d, p, b]) => (
            <tr key={d}>
              <td>{d}</td>
              <td className="num" data-value={p}>{formatCount(p)}</td>
              <td className="num" data-value={b}>{formatBytes(b)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
