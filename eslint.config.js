// ESLint for the whole repository: typescript-eslint's recommended rules and the layer
// rule (scripts/eslint-layers.js): a module imports only from its own layer or those
// below it (docs/architecture.md). `npm test` runs it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layers from './scripts/eslint-layers.js';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'build/', 'wasm/', 'test-results/', 'playwright-report/', '.tmp/', '.gl/', 'public/', '**/*.tmp.ts', '**/*.tmp.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { quantlab: layers },
    rules: {
      'quantlab/layers': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests match terminal output, escape sequences included.
    files: ['**/*.test.ts'],
    rules: { 'no-control-regex': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' } },
  },
);
