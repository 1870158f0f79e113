// One closing line for CI over both runners: "N passed, N failed, N skipped".
import { readFileSync } from 'node:fs';

const [unitPath, e2ePath] = process.argv.slice(2);
const unit = JSON.parse(readFileSync(unitPath, 'utf8'));
const e2e = JSON.parse(readFileSync(e2ePath, 'utf8'));

const passed = unit.numPassedTests + (e2e.stats?.expected ?? 0);
const failed = unit.numFailedTests + (e2e.stats?.unexpected ?? 0) + (e2e.stats?.flaky ?? 0);
const skipped = unit.numPendingTests + unit.numTodoTests + (e2e.stats?.skipped ?? 0);
console.log(`unit: ${unit.numPassedTests} passed; browser: ${e2e.stats?.expected ?? 0} passed`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 && skipped === 0 ? 0 : 1);
