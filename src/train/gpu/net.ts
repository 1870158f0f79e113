// The trainable Llama's forward and backward (train/model.ts) recorded as WGSL dispatches
// over GPU-resident buffers (program.ts): the same graph and the same tape order (each
// operation records its backward, run in reverse), the activations and their gradients in
// buffers of the program, the parameters' values (what the forward reads) and gradients
// given by the trainer (trainer.ts).
import { RopeTable } from '../../model/families/blocks.ts';
import type { ModelConfig } from '../../model/families/config.ts';
import { Program, uniformWords } from './program.ts';

/** An activation: its buffer and (once something downstream has one) its gradient's, zeroed each run. */
export class GpuNode {
  private gradBuf: GPUBuffer | null = null;
  constructor(
    private readonly prog: Program,
    readonly buf: GPUBuffer,
    readonly length: number,
  ) {}
  get hasGrad(): boolean {
    return this.gradBuf !== null;
  }
  /** The gradient buffer, made (and zeroed each run) when first asked for. */
  g(): GPUBuffer {
    return (this.gradBuf ??= this.prog.buffer(this.length, 'grad', true));
  }
}

/** What the recorder reads and writes of the trainer's parameters. */
export interface ParamAccess {
  shape(name: string): readonly number[];
  /** The buffer the forward reads (recording any decode it needs first, QLoRA's base). */
  read(prog: Program, name: string): GPUBuffer;
  /** The gradient buffer, or null for a frozen parameter. */
  grad(name: string): GPUBuffer | null;
  /** The adapter on a linear weight: A [rank, cols], B [rows, rank] buffers and their gradients. */
  adapter(name: string): { rank: number; scale: number; a: GPUBuffer; b: GPUBuffer; da: GPUBuffer; db: GPUBuffer } | undefined;
}

export interface RecordedForward {
  logits: GpuNode;
  /** Records the backward from the logits' gradient (run the tape once). */
  backward(): void;
}

/** The cos/sin table of positions 0..n-1 (RopeTable.at), as the rope kernel reads it. */
export function ropeTableValues(c: ModelConfig, factors: Float32Array | null, n: number): Float32Array {
  const table = new RopeTable({ nRot: c.nRot, style: c.ropeStyle, freqBase: c.ropeFreqBase, freqScale: c.ropeFreqScale, factors, attnFactor: c.ropeAttnFactor });
  const pairs = c.nRot / 2;
  const out = new Float32Array(n * pairs * 2);
  for (let t = 0; t < n; t++) out.set(table.at(t).subarray(0, pairs * 2), t * pairs * 2);
  return out;
}

/** Records one forward pass of n tokens (from `tokens`, a u32 buffer) into `prog`. */
export function recordForward(prog: Program, c: ModelConfig, params: ParamAccess, tokens: GPUBuffer, n: number, ropeCs: GPUBuffer): RecordedForward {
  const tape: (() => void)[] = [];
  const node = (len: number, what: string) => new GpuNode(prog, prog.buffer(len, what), len);
  const d = c.nEmbd;

  const linear = (name: string, x: GpuNode): GpuNode => {
    const [rows, cols] = params.shape(name);
    const y = node(n * rows, name);
    prog.kernel('linear', [params.read(prog, name), x.buf, y.buf], uniformWords([rows, cols, n, 0], [1]), n * rows);
    const grad = params.grad(name);
    tape.push(() => {
      if (!y.hasGrad) return;
      prog.kernel('linear_dx', [params.read(prog, name), y.g(), x.g()], uniformWords([rows, cols, n, 0], [1]), n * cols);
      if (grad) prog.kernel('linear_dw', [x.buf, y.g(), grad], uniformWords([rows, cols, n, 0], [1]), rows * cols);
    });
    const ad = params.adapter(name);
    if (!ad) return y;
    // y += scale·B·(A·x); the output is y itself, so its gradient is the base product's too.
    const u = node(n * ad.rank, `${name}.lora_u`);
    prog.kernel('linear', [ad.a, x.buf, u.buf], uniformWords([ad.rank, cols, n, 0], [1]), n * ad.rank);
    prog.kernel('linear', [ad.b, u.buf, y.buf], uniformWords([rows, ad.rank, n, 1], [ad.scale]), n * rows);
    tape.push(() => {
      if (!y.hasGrad) return;
      prog.kernel('linear_dx', [ad.b, y.g(), u.g()], uniformWords([rows, ad.rank, n, 0], [ad.scale]), n * ad.rank);
      prog.kernel('linear_dw', [u.buf, y.g(), ad.db], uniformWords([rows, ad.rank, n, 0], [ad.scale]), rows * ad.rank);
      prog.kernel('linear_dx', [ad.a, u.g(), x.g()], uniformWords([ad.rank, cols, n, 0], [1]), n * cols);
      prog.kernel('linear_dw', [x.buf, u.g(), ad.da], uniformWords([ad.rank, cols, n, 0], [1]), ad.rank * cols);
    });
    return y;
  };

  const norm = (name: string, x: GpuNode): GpuNode => {
    const y = node(n * d, name);
    const inv = prog.buffer(n, `${name}.inv`);
    const w = params.read(prog, name);
    prog.kernel('rmsnorm', [x.buf, w, y.buf, inv], uniformWords([d, n], [c.rmsEps]), n);
    const grad = params.grad(name);
    tape.push(() => {
      if (!y.hasGrad) return;
      prog.kernel('rmsnorm_dx', [x.buf, w, inv, y.g(), x.g()], uniformWords([d, n]), n);
      if (grad) prog.kernel('rmsnorm_dw', [x.buf, inv, y.g(), grad], uniformWords([d, n]), d);
    });
    return y;
  };

  const add = (a: GpuNode, b: GpuNode): GpuNode => {
    const y = node(a.length, 'residual');
    prog.kernel('add', [a.buf, b.buf, y.buf], uniformWords([a.length, 0]), a.length);
    tape.push(() => {
      if (!y.hasGrad) return;
      prog.kernel('add', [y.g(), y.g(), a.g()], uniformWords([a.length, 1]), a.length);
      prog.kernel('add', [y.g(), y.g(), b.g()], uniformWords([a.length, 1]), a.length);
    });
    return y;
  };

  const rotate = (x: GpuNode, heads: number): GpuNode => {
    const y = node(x.length, 'rope');
    const shape = [n, heads, c.headDim, c.nRot / 2, c.ropeStyle === 'neox' ? 1 : 0];
    prog.kernel('rope', [x.buf, y.buf, ropeCs], uniformWords([...shape, 0]), x.length);
    tape.push(() => y.hasGrad && prog.kernel('rope', [y.g(), x.g(), ropeCs], uniformWords([...shape, 1]), x.length));
    return y;
  };

  const attention = (h: GpuNode, il: number): GpuNode => {
    const L = c.names.layers[il];
    const q = rotate(linear(L.q!, h), c.nHead);
    const k = rotate(linear(L.k!, h), c.nHeadKv);
    const v = linear(L.v!, h);
    const out = node(n * c.nHead * c.headDim, 'attention');
    const probs = prog.buffer(c.nHead * n * n, 'probs');
    const geometry = uniformWords([n, c.nHead, c.nHeadKv, c.headDim], [c.attnScale]);
    prog.kernel('attention', [q.buf, k.buf, v.buf, probs, out.buf], geometry, c.nHead * n);
    tape.push(() => {
      if (!out.hasGrad) return;
      const ds = prog.buffer(c.nHead * n * n, 'dscores');
      prog.kernel('attn_ds', [v.buf, probs, out.g(), ds], geometry, c.nHead * n);
      prog.kernel('attn_dq', [k.buf, ds, q.g()], geometry, q.length);
      prog.kernel('attn_dkv', [q.buf, probs, ds, out.g(), k.g(), v.g()], geometry, k.length);
    });
    return linear(L.o, out);
  };

  const ffn = (h: GpuNode, il: number): GpuNode => {
    const L = c.names.layers[il];
    const gate = linear(L.gate!, h);
    const up = linear(L.up, h);
    const act = node(gate.length, 'swiglu');
    prog.kernel('swiglu', [gate.buf, up.buf, act.buf], uniformWords([gate.length]), gate.length);
    tape.push(() => act.hasGrad && prog.kernel('swiglu_back', [gate.buf, up.buf, act.g(), gate.g(), up.g()], uniformWords([gate.length]), gate.length));
    return linear(L.down, act);
  };

  const x0 = node(n * d, 'embd');
  prog.kernel('embed', [params.read(prog, c.names.tokenEmbd), tokens, x0.buf], uniformWords([d, n]), n * d);
  const embdGrad = params.grad(c.names.tokenEmbd);
  tape.push(() => x0.hasGrad && embdGrad && prog.kernel('embed_back', [x0.g(), tokens, embdGrad], uniformWords([d, n]), d));
  let x = x0;
  for (let il = 0; il < c.nLayer; il++) {
    const L = c.names.layers[il];
    x = add(x, attention(norm(L.attnNorm, x), il));
    x = add(x, ffn(norm(L.ffnNorm, x), il));
  }
  const logits = linear(c.names.output, norm(c.names.outputNorm, x));
  let used = false;
  return {
    logits,
    backward: () => {
      if (used) throw new Error('backward: this forward pass was already recorded backward');
      used = true;
      for (let i = tape.length - 1; i >= 0; i--) tape[i]();
    },
  };
}
