// Plain text about an eval result, for the Model output tab (no store, no engine: testable alone).

/** What an eval says about where it ran: the models that ran resident or per product, and the products' counts. */
export interface EvalPlaces {
  forward: { readonly resident: readonly string[]; readonly perProduct: Readonly<Record<string, string>> };
  products: { gpu: number; cpu: number } | null;
}

/** Where the eval ran: each model's whole forward pass on WebGPU, its matrix products only, or the CPU. */
export function whereItRan(result: EvalPlaces): string {
  const resident = result.forward.resident.length;
  const perProduct = Object.keys(result.forward.perProduct).length;
  const whole = resident === 0 ? '' : `The whole forward pass on WebGPU for ${perProduct === 0 ? 'every model' : `${resident} of ${resident + perProduct} models`}. `;
  if (!result.products) return resident > 0 ? whole.trim() : 'Computed on the CPU.';
  if (perProduct === 0 && result.products.gpu === 0 && result.products.cpu === 0) return whole.trim();
  const { gpu, cpu } = result.products;
  return `${whole}${gpu} matrix products on WebGPU${cpu ? `, ${cpu} on the CPU (no GPU matmul for their type)` : ''}.`;
}
