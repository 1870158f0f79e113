// Which calibration methods each family can run, and in one sentence why not where it
// cannot. The forward pass (eval, imatrix calibration, the budget's KL scan, the Model
// output tab) runs on every family; GPTQ and AWQ carry Llama-shaped rules:
//   - GPTQ quantizes attn_q/k/v/output and ffn_gate/up/down stage by stage, and phi3's
//     fused attn_qkv and gate|up ffn_up each as one problem on its stage's input: every family.
//   - AWQ folds 1/s into attn_norm / ffn_norm / attn_v rows / ffn_up rows and scores the
//     MLP with the family's own feedForward: right for llama, qwen3 (its q/k norms act on
//     q/k's outputs, which the input scaling leaves unchanged), qwen2 (attn_v.bias is folded
//     with v's rows) and Gemma (GELU-tanh MLP; its norms store w+1 and multiply by it, so
//     1/s divides the stored weight as is) and phi3 (its fused attn_qkv / ffn_up each one
//     group; later linears' 1/s into their v rows / up rows).
// No family refuses either method today; the table stays for the next family that must.
import type { Family, ModelConfig } from './config.ts';

export type CalibrationMethod = 'gptq' | 'awq';

const REFUSALS: Record<CalibrationMethod, Partial<Record<Family, string>>> = {
  gptq: {},
  awq: {},
};

/** Why `method` cannot run on this model's family (one sentence), or null when it can. */
export function methodRefusal(config: Pick<ModelConfig, 'family'>, method: CalibrationMethod): string | null {
  const why = REFUSALS[method][config.family];
  return why ? `${method.toUpperCase()} is not available for ${config.family} models yet: ${why}.` : null;
}

/** Throws methodRefusal's sentence when the family cannot run `method`. */
export function assertMethodSupported(config: Pick<ModelConfig, 'family'>, method: CalibrationMethod): void {
  const why = methodRefusal(config, method);
  if (why) throw new Error(why);
}
