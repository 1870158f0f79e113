import { describe, expect, it } from 'vitest';
import { parseSize } from './size.ts';

describe('parseSize', () => {
  it('reads bytes with decimal and binary units, case-insensitively', () => {
    expect(parseSize('123456')).toBe(123456);
    expect(parseSize('300KB')).toBe(300_000);
    expect(parseSize('300 kb')).toBe(300_000);
    expect(parseSize('4.2GB')).toBe(4_200_000_000);
    expect(parseSize('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('2MiB')).toBe(2 * 1024 * 1024);
    expect(parseSize('10B')).toBe(10);
  });
  it('refuses what is not a size', () => {
    for (const bad of ['', 'KB', '-5KB', '3 TB', '1e6', '4,2GB']) expect(() => parseSize(bad)).toThrow(/is not a size/);
  });
});
