import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';
import { WASM_SOURCE_DIR, buildWasm } from './scripts/build-wasm.mjs';

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

export default defineConfig({
  plugins: [fastCodecsWasm(), react()],
  // Relative asset paths: the built app works from any folder or file server.
  base: './',
  worker: { format: 'es' },
  server: { host: '127.0.0.1' },
  test: {
    include: ['src/**/*.test.ts', 'bench/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    pool: 'forks',
  },
});
