import { expect, it } from 'vitest';
import { LINE_INTERVAL_MS, REDRAW_MS, progressLine } from './progress.ts';

function recorder() {
  let stderr = '';
  let clock = 0;
  return { io: { stdout: () => undefined, stderr: (t: string) => void (stderr += t) }, out: () => stderr, now: () => clock, advance: (ms: number) => void (clock += ms) };
}

it('on a terminal: one line redrawn in place at most every REDRAW_MS, erased by clear()', () => {
  const r = recorder();
  const line = progressLine<number>(r.io, true, (n) => `step ${n}`, r.now);
  line.update(1);
  line.update(2); // too soon: not drawn
  r.advance(REDRAW_MS);
  line.update(3);
  line.clear();
  expect(r.out()).toBe('\r\x1b[Kstep 1\r\x1b[Kstep 3\r\x1b[K');
});

it('off a terminal: a plain line every LINE_INTERVAL_MS, nothing for a shorter run, nothing to erase', () => {
  const r = recorder();
  const line = progressLine<number>(r.io, false, (n) => `step ${n}`, r.now);
  line.update(1);
  r.advance(LINE_INTERVAL_MS - 1);
  line.update(2);
  expect(r.out()).toBe('');
  r.advance(1);
  line.update(3);
  r.advance(LINE_INTERVAL_MS);
  line.update(4);
  line.clear();
  expect(r.out()).toBe('step 3\nstep 4\n');
});
