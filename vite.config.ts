import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';
import { WASM_SOURCE_DIR, buildWasm } from './scripts/build-wasm.mjs';
import { availableParallelism } from 'node:os';

/** Builds the fast codecs' WebAssembly (wasm/ -> wasm/build/quant.wasm) before anything imports it; rebuilds on edits in dev. */
function fastCodecsWasm(): Plugin {
  return {
    name: 'quantlab-fast-codecs-wasm',
    async config() {
      await buildWasm({ quiet: true });
    },
    configureServer(server) {
      server.watcher.add(WASM_SOURCE_DIR);
      server.watcher.on('change', (file) => {
        if (file.startsWith(WASM_SOURCE_DIR) && file.endsWith('.ts')) {
          buildWasm({ quiet: true }).then(
            () => server.ws.send({ type: 'full-reload' }),
            (e: Error) => server.config.logger.error(e.message),
          );
        }
      });
    },
  };
}

/** Nothing leaves the machine: scripts, connections and workers from this origin only. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "connect-src 'self' blob: data:; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'none'";

/** The policy as index.html's <meta> (the page, also in dev) and as a header from `vite preview`. */
function contentSecurityPolicy(): Plugin {
  return {
    name: 'quantlab-content-security-policy',
    transformIndexHtml: () => [
      { tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CONTENT_SECURITY_POLICY }, injectTo: 'head-prepend' },
    ],
  };
}

export default defineConfig({
  plugins: [fastCodecsWasm(), contentSecurityPolicy(), react()],
  // Relative asset paths: the built app works from any folder or file server.
  base: './',
  worker: { format: 'es' },
  server: { host: '127.0.0.1' },
  // The same policy as a header: a worker's script takes its policy
  // from its own response, not from the page, so only a header covers the engine worker.
  // Static hosts should send it too (docs/reliability.md, "Nothing leaves the machine").
  preview: { headers: { 'Content-Security-Policy': CONTENT_SECURITY_POLICY } },
  test: {
    include: ['src/**/*.test.ts', 'bench/**/*.test.ts', 'scripts/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    pool: 'forks',
    // Two files at a time even on 2 cores (vitest's default there is one): many wait on a
    // child process (llama.cpp, the CLI) or the GPU much of the time. 2-core machine: the
    // unit tests in 6.8 min instead of ~9.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
