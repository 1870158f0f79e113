// eval on the resident forward pass (gpu-forward.ts): each model of an evaluation (the F32
// model, then each preset's) uploaded once, its scoring pass run chunk by chunk with one
// readback of four numbers per position (argmax, NLL, KL against the F32 pass's logits,
// which stay on the GPU), and its greedy continuation one position per pass. A model the
// resident pass cannot run (a type without a GPU matmul, a buffer over the binding limit)
// returns null here and eval runs it through its Linear (the per-product path); if the
// F32 pass ran resident, its logits are read back once for that model's KL.
import type { GpuContext } from '../gpu/device.ts';
import type { ModelConfig } from './families/config.ts';
import type { WeightProvider } from './families/linear.ts';
import { BaseLogits, GpuForward, ResidentUnsupportedError, type ResidentActivations } from './gpu-forward.ts';
import type { QuantizedWeights } from './weights.ts';

/** What eval reports of the forward pass it ran: which models ran resident, which not and why. */
export interface ForwardNote {
  /** 'resident': the whole forward on the GPU; 'products': the matrix products only (or the CPU). */
  readonly mode: 'resident' | 'products';
  /** Models (F32 and presets) that ran resident. */
  readonly resident: string[];
  /** Models that ran per product, with the reason. */
  readonly perProduct: Record<string, string>;
}

/** eval's scoring of one model (eval.ts's Pass). */
export interface ResidentPass {
  logits: Float32Array | null;
  argmax: Int32Array;
  nll: Float64Array;
  kl: Float64Array | null;
}

export class ResidentEval {
  private current: GpuForward | null = null;
  private store: BaseLogits | null = null;
  readonly note: ForwardNote;

  /**
   * `gpu` null: nothing runs resident (`why` says why: another activation mode, perplexity
   * chunking, the CPU backend). `capacity`: positions of the longest sequence (the text, or
   * prompt + continuation).
   */
  constructor(
    private readonly gpu: GpuContext | null,
    private readonly config: ModelConfig,
    private readonly capacity: number,
    private readonly chunk: number,
    why = 'not on WebGPU',
    /** The presets' activation mode (the F32 pass always runs f32, as eval's CPU pass does). */
    private readonly activations: ResidentActivations = 'f32',
  ) {
    this.note = { mode: gpu ? 'resident' : 'products', resident: [], perProduct: gpu ? {} : { all: why } };
  }

  /** Uploads model `label`; false (and noted) when it cannot run resident. */
  private async begin(label: string, weights: WeightProvider, quantized: QuantizedWeights | null, activations: ResidentActivations): Promise<boolean> {
    this.release();
    if (!this.gpu) return false;
    try {
      this.current = await GpuForward.create(this.gpu, this.config, weights, quantized, { maxTokens: this.chunk, capacity: this.capacity, activations });
      this.note.resident.push(label);
      return true;
    } catch (e) {
      if (!(e instanceof ResidentUnsupportedError)) throw e;
      this.note.perProduct[label] = e.message;
      return false;
    }
  }

  /**
   * The scoring pass of model `label` over `tokens` (teacher forcing, `chunk` positions per
   * pass); `base`: the F32 pass (KL against its resident logits), null for the F32 pass
   * itself (its logits are kept on the GPU). null: run it per product (base.logits is then
   * filled from the GPU when the F32 pass ran resident).
   */
  async pass(
    label: string,
    weights: WeightProvider,
    quantized: QuantizedWeights | null,
    tokens: readonly number[],
    base: ResidentPass | null,
    tick: (label: string) => void,
    check: () => void,
  ): Promise<ResidentPass | null> {
    if (base && !this.store) {
      this.release();
      if (this.gpu) this.note.perProduct[label] = 'the F32 pass did not run resident';
      return null;
    }
    if (!(await this.begin(label, weights, quantized, base ? this.activations : 'f32'))) {
      if (base && !base.logits && this.store) base.logits = await this.store.read();
      return null;
    }
    if (!base) {
      this.store?.destroy();
      this.store = null;
      try {
        this.store = new BaseLogits(this.gpu!, tokens.length - 1, this.config.nVocab);
      } catch (e) {
        if (!(e instanceof ResidentUnsupportedError)) throw e;
        this.note.resident.pop();
        this.note.perProduct[label] = e.message;
        this.release();
        return null;
      }
    }
    try {
      return await this.score(tokens, base, tick, check);
    } catch (e) {
      this.dispose(); // cancelled or failed: nothing stays on the GPU
      throw e;
    }
  }

  private async score(tokens: readonly number[], base: ResidentPass | null, tick: (label: string) => void, check: () => void): Promise<ResidentPass> {
    const positions = tokens.length - 1;
    const f = this.current!;
    const out: ResidentPass = { logits: null, argmax: new Int32Array(positions), nll: new Float64Array(positions), kl: base ? new Float64Array(positions) : null };
    f.reset();
    for (let start = 0; start < positions; start += this.chunk) {
      check();
      const n = Math.min(this.chunk, positions - start);
      const r = await f.forward(tokens.slice(start, start + n), {
        targets: tokens.slice(start + 1, start + 1 + n),
        ...(base ? { base: this.store! } : { keep: this.store! }),
      });
      out.argmax.set(r.argmax, start);
      out.nll.set(r.nll, start);
      if (out.kl && r.kl) out.kl.set(r.kl, start);
      tick(`position ${start + n} of ${positions}`);
    }
    return out;
  }

  /**
   * llama-perplexity's chunked scoring (eval.ts windowPass) of model `label` on the GPU: each
   * window from an empty KV cache, `chunk` positions per pass, one readback per pass, which
   * carries the logits only for passes holding scored positions (the second half of a
   * window); `visit` gets them as the CPU pass gives them. `f32`: the F32 pass (its products
   * see f32 inputs whatever the activation mode). false: run it per product.
   */
  async windowPass(
    label: string,
    weights: WeightProvider,
    quantized: QuantizedWeights | null,
    f32: boolean,
    windows: readonly number[][],
    visit: (logits: Float32Array, offset: number, index: number, target: number) => void,
    endChunk: () => void,
    tick: (label: string) => void,
    check: () => void,
  ): Promise<boolean> {
    if (!(await this.begin(label, weights, quantized, f32 ? 'f32' : this.activations))) return false;
    const f = this.current!;
    const V = this.config.nVocab;
    try {
      let index = 0;
      for (const [c, w] of windows.entries()) {
        const first = Math.floor(w.length / 2);
        f.reset();
        for (let start = 0; start < w.length; start += this.chunk) {
          check();
          const n = Math.min(this.chunk, w.length - start);
          const scored = start + n > first;
          const r = await f.forward(w.slice(start, start + n), { readLogits: scored });
          for (let i = 0; scored && i < n; i++) {
            const pos = start + i;
            if (pos >= first && pos < w.length - 1) visit(r.logits!, i * V, index++, w[pos + 1]);
          }
          tick(`chunk ${c + 1} of ${windows.length}, position ${start + n} of ${w.length}`);
        }
        endChunk();
      }
      return true;
    } catch (e) {
      this.dispose(); // cancelled or failed: nothing stays on the GPU
      throw e;
    }
  }

  /** Greedy continuation on the model the last pass() made resident; null when it ran per product. */
  async greedy(prompt: readonly number[], count: number, eosId: number | null | undefined, check: () => void): Promise<number[] | null> {
    const f = this.current;
    if (!f) return null;
    try {
      return await this.continueGreedy(f, prompt, count, eosId, check);
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  private async continueGreedy(f: GpuForward, prompt: readonly number[], count: number, eosId: number | null | undefined, check: () => void): Promise<number[]> {
    f.reset();
    check();
    let next = -1;
    for (let s = 0; s < prompt.length; s += this.chunk) {
      const r = await f.forward(prompt.slice(s, s + this.chunk));
      next = r.argmax[r.argmax.length - 1];
    }
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      out.push(next);
      if (eosId !== undefined && eosId !== null && next === eosId) break;
      if (i === count - 1) break;
      check();
      next = (await f.forward([next])).argmax[0];
    }
    return out;
  }

  /** Frees the current model's buffers (the F32 logits stay for the presets). */
  release(): void {
    this.current?.dispose();
    this.current = null;
  }

  /** Frees everything. */
  dispose(): void {
    this.release();
    this.store?.destroy();
    this.store = null;
  }
}
