// Every family module by name: the one place that lists them.
import type { Family } from './config.ts';
import type { FamilyModule } from './decoder.ts';
import { gemma2Family } from './gemma2.ts';
import { gemma3Family } from './gemma3.ts';
import { llamaFamily } from './llama.ts';
import { phi3Family } from './phi3.ts';
import { qwen2Family } from './qwen2.ts';
import { qwen3Family } from './qwen3.ts';

export const FAMILY_MODULES: readonly FamilyModule[] = [llamaFamily, qwen2Family, qwen3Family, gemma3Family, gemma2Family, phi3Family];

export function familyModule(family: Family): FamilyModule {
  const m = FAMILY_MODULES.find((f) => f.family === family);
  if (!m) throw new Error(`no forward pass for the family '${family}'`);
  return m;
}

/** The module that runs a GGUF's general.architecture, or null. */
export function familyForArchitecture(arch: string): FamilyModule | null {
  return FAMILY_MODULES.find((f) => f.arch === arch) ?? null;
}
