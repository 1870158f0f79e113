#!/usr/bin/env node
// quantlab CLI launcher. Runs the CLI bundle (build/cli, compiled from src/ by
// scripts/build-cli.mjs at install) when it is up to date: plain Node, no compile step at
// start. Otherwise (a fresh edit to src/, no bundle yet) the TypeScript sources themselves
// through tsx's loader, in this process, so `npx quantlab ...` always runs what src/ says.
import { pathToFileURL } from 'node:url';
import { CLI_ENTRY, cliBundleIsStale } from '../scripts/build-cli.mjs';

let main;
if (process.env.QUANTLAB_CLI_SOURCES !== '1' && !cliBundleIsStale()) {
  ({ main } = await import(pathToFileURL(CLI_ENTRY).href));
} else {
  (await import('tsx/esm/api')).register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
