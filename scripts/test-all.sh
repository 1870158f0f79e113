#!/usr/bin/env bash
# Every test of quantlab: type check, unit tests (vitest, Node + Dawn WebGPU on SwiftShader)
# and browser tests (Playwright, Debian's Chromium with WebGPU). Installs what a fresh
# Debian machine lacks first. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian's Chromium: the browser for Playwright (which cannot download its own here) and,
# through its SwiftShader Vulkan driver, the GPU for Dawn in Node.
if [ ! -x /usr/bin/chromium ] || ! ldconfig -p | grep -q libvulkan.so.1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libvulkan1 >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm install, not npm ci: node-llama-cpp lists optional platform packages that were never
  # published for this version, which npm ci reports as a lock file out of sync.
  npm install --no-audit --no-fund
fi

# Dawn (npm `webgpu`) on Chromium's SwiftShader Vulkan ICD: see docs/webgpu.md.
export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/lib/chromium/vk_swiftshader_icd.json}

results=$(mktemp -d)
# The fast codecs' WebAssembly, built from wasm/ (AssemblyScript); never committed.
npm run build:wasm --silent
# The CLI bundle (build/cli) that bin/quantlab.js runs: the tests spawn the CLI as users do.
npm run build:cli --silent
# The type check and ESLint (with the layer rule, scripts/eslint-layers.js: a lower layer
# importing a higher one fails here) side by side: each is one single-threaded process.
npx tsc --noEmit -p . &
typecheck=$!
npx eslint .
wait "$typecheck"
npx vitest run --reporter=default --reporter=json --outputFile="$results/unit.json"
npm run build --silent
PLAYWRIGHT_JSON_OUTPUT_NAME="$results/e2e.json" npx playwright test --reporter=list,json
node scripts/summarize-tests.mjs "$results/unit.json" "$results/e2e.json"
