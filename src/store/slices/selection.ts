// What the user picked: the tensor (in the table), the types to compare, the preset.
import { compareReset, COMPARE_SLOTS } from './compare.ts';
import { tickets, type Slice } from './shared.ts';

// q6_K and q4_K with q2_K: the K-quants most people come to compare (on the sample's rows of 64, padded).
export const DEFAULT_COMPARE_TYPES = ['f16', 'bf16', 'q8_0', 'q6_K', 'int8', 'q4_0', 'q4_K', 'nf4', 'q2_K'];

export interface SelectionSlice {
  tensor: string | null;
  types: string[];
  preset: string;
  selectTensor: (name: string | null) => void;
  toggleType: (id: string) => void;
  setTypes: (ids: string[]) => void;
  setPreset: (p: string) => void;
}

export const selectionSlice: Slice<SelectionSlice> = (set) => ({
  tensor: null,
  types: DEFAULT_COMPARE_TYPES,
  preset: 'Q4_K_M',
  // The row already selected keeps its results: clearing them would not start a new comparison
  // (nothing the comparison depends on changed), so the charts would just vanish. Another row
  // drops them, and a comparison still running for the old row may no longer write.
  selectTensor: (tensor) =>
    set((s) => {
      if (s.tensor === tensor) return {};
      for (const slot of COMPARE_SLOTS) tickets.revoke(slot);
      return { tensor, ...compareReset(s) };
    }),
  toggleType: (id) => set((s) => ({ types: s.types.includes(id) ? s.types.filter((t) => t !== id) : [...s.types, id] })),
  setTypes: (types) => set({ types }),
  setPreset: (preset) => set({ preset }),
});
