#!/usr/bin/env node
// quantlab CLI launcher: runs the TypeScript sources through tsx's loader, in this
// process, so `npx quantlab ...` works after `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
