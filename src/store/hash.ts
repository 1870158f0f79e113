// State worth sharing lives in the URL hash: #tensor=...&types=a,b,c&preset=Q4_K_M.
import { useEffect } from 'react';
import { useApp } from './store.ts';

function readHash(): Partial<{ tensor: string; types: string[]; preset: string }> {
  const p = new URLSearchParams(location.hash.slice(1));
  return {
    tensor: p.get('tensor') ?? undefined,
    types: p.get('types')?.split(',').filter(Boolean),
    preset: p.get('preset') ?? undefined,
  };
}

export function useHashState(): void {
  useEffect(() => {
    const h = readHash();
    const s = useApp.getState();
    if (h.types?.length) s.setTypes(h.types);
    if (h.preset) s.setPreset(h.preset);
    // The tensor is applied once a model that has it is loaded.
    const pendingTensor = h.tensor;
    return useApp.subscribe((state, prev) => {
      // Most changes are a job's progress: only the model and what the hash holds matter here.
      if (state.model === prev.model && state.tensor === prev.tensor && state.types === prev.types && state.preset === prev.preset) return;
      if (pendingTensor && state.model && state.model !== prev.model && state.model.tensors.some((t) => t.name === pendingTensor)) {
        state.selectTensor(pendingTensor);
      }
      const p = new URLSearchParams();
      if (state.tensor) p.set('tensor', state.tensor);
      p.set('types', state.types.join(','));
      p.set('preset', state.preset);
      const next = `#${p.toString()}`;
      if (location.hash !== next) history.replaceState(null, '', next);
    });
  }, []);
}
