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

/**
 * The Hugging Face Hub and the hosts its file downloads redirect to (LFS files to
 * cdn-lfs*, Xet-stored files to cas-bridge.xethub.hf.co): the only places the page may
 * connect to besides itself, and only when the user opens a Hub model (docs/hub.md).
 */
export const HUB_CONNECT_SOURCES = [
  'https://huggingface.co',
  'https://cdn-lfs.huggingface.co',
  'https://cdn-lfs-us-1.huggingface.co',
  'https://cdn-lfs-eu-1.huggingface.co',
  'https://cdn-lfs.hf.co',
  'https://cdn-lfs-us-1.hf.co',
  'https://cdn-lfs-eu-1.hf.co',
  'https://cas-bridge.xethub.hf.co',
];

/** Nothing leaves the machine unasked: scripts and workers from this origin only; connections to it and to the Hub. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  `connect-src 'self' blob: data: ${HUB_CONNECT_SOURCES.join(' ')}; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'none'`;

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
    // Setup hooks write models and start llama.cpp children: on a loaded 2-core machine the
    // default 10 s was seen to run out (scale.test's beforeAll at 10.0 s).
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at a time even on 2 cores (vitest's default there is one): many wait on a
    // child process (llama.cpp, the CLI) or the GPU much of the time. 2-core machine: the
    // unit tests in 6.8 min instead of ~9.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
