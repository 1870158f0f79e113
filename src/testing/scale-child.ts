// The work of src/engine/scale.test.ts, in a process of its own so that its peak memory
// (max RSS, from the kernel) is the work's alone: open a model larger than memory, list its
// tensors, quantize one tensor into two types, and (GGUF) export it requantized through the
// streaming writer into a sparse file. Prints one JSON line. Test support only.
//   node --import tsx src/testing/scale-child.ts FILE... --tensor NAME [--export OUT.gguf --type T [--override REGEX=T]...]
import { open } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/engine.ts';
import { fileSource } from '../formats/node-source.ts';
import { loadBuiltFastCodecs } from '../quant/fast/node.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { export: { type: 'string' }, tensor: { type: 'string' }, type: { type: 'string', default: 'q8_0' }, override: { type: 'string', multiple: true, default: [] } },
});

/** True when every byte is zero (checked 8 bytes at a time where aligned). */
function allZero(chunk: Uint8Array): boolean {
  const head = chunk.byteOffset % 8 === 0 ? chunk.length - (chunk.length % 8) : 0;
  const words = new BigUint64Array(chunk.buffer, chunk.byteOffset, head / 8);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
  for (let i = head; i < chunk.length; i++) if (chunk[i] !== 0) return false;
  return true;
}

// As the CLI does: the WebAssembly codecs (same bytes as the reference), built beforehand
// by the parent (building them here would count the compiler's memory as the work's).
loadBuiltFastCodecs();
const t0 = performance.now();
const engine = new Engine(null);
const summary = await engine.load(await Promise.all(positionals.map(fileSource)));
const tLoad = performance.now();
const tensor = values.tensor!;
const compare = await engine.compare({ tensor, types: ['q8_0', 'q4_K'] });
const tCompare = performance.now();
const rssAfterCompare = process.memoryUsage.rss();
let exportRssPeak = 0;

let exported: { bytes: number; zeroBytesSkipped: number; ms: number; rssPeakBytes: number } | null = null;
if (values.export) {
  // A sparse sink: chunks of zeros become holes, as `cp --sparse` would make them.
  const out = await open(values.export, 'w');
  let at = 0;
  let skipped = 0;
  try {
    const bytes = await engine.exportGguf(
      { type: values.type! },
      values.override!.map((o) => ({ pattern: o.slice(0, o.lastIndexOf('=')), type: o.slice(o.lastIndexOf('=') + 1) })),
      async (chunk) => {
        exportRssPeak = Math.max(exportRssPeak, process.memoryUsage.rss());
        if (allZero(chunk)) skipped += chunk.length;
        else for (let done = 0; done < chunk.length; ) done += (await out.write(chunk, done, chunk.length - done, at + done)).bytesWritten;
        at += chunk.length;
      },
    );
    await out.truncate(at);
    exported = { bytes, zeroBytesSkipped: skipped, ms: performance.now() - tCompare, rssPeakBytes: exportRssPeak };
  } finally {
    await out.close();
  }
}

console.log(
  JSON.stringify({
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    format: summary.format,
    files: summary.files,
    tensorCount: summary.tensors.length,
    totalBytes: summary.totalBytes,
    parameterCount: summary.parameterCount,
    rssAfterCompareBytes: rssAfterCompare,
    loadMs: tLoad - t0,
    compareMs: tCompare - tLoad,
    compare: compare.results.map((r) => ({ type: r.type, bytes: r.bytes, rmse: r.metrics.rmse, error: r.error ?? null })),
    exported,
  }),
);
