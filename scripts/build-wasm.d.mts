// Types of build-wasm.mjs, for the TypeScript that imports it (src/quant/fast/node.ts, vite.config.ts).
export declare const WASM_SOURCE_DIR: string;
export declare const WASM_OUTPUT: string;
/** The products again with relaxed SIMD (loaded where the engine validates it). */
export declare const WASM_RELAXED_OUTPUT: string;
export declare function wasmIsStale(): boolean;
export declare function buildWasm(options?: { force?: boolean; quiet?: boolean }): Promise<string>;
