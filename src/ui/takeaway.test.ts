import { describe, expect, it } from 'vitest';
import { fileNameOf, toCsv, toMarkdown } from './takeaway.ts';

describe('take-away text', () => {
  const data = { header: ['type', 'rmse', 'note'], rows: [['q4_K', 0.001234567891, 'a, "quoted" note'], ['f16', Infinity, '']] };

  it('CSV keeps full precision and quotes what needs quoting', () => {
    expect(toCsv(data)).toBe('type,rmse,note\r\nq4_K,0.001234567891,"a, ""quoted"" note"\r\nf16,inf,\r\n');
  });

  it('Markdown right-aligns numeric columns and escapes pipes', () => {
    expect(toMarkdown({ header: ['type', 'rmse'], rows: [['a|b', '1.2e-3']] }, [false, true])).toBe('| type | rmse |\n| --- | ---: |\n| a\\|b | 1.2e-3 |\n');
  });

  it('file names are safe', () => {
    expect(fileNameOf('Error metrics blk.0.attn_q.weight', 'csv')).toBe('error-metrics-blk.0.attn_q.weight.csv');
    expect(fileNameOf('///', 'png')).toBe('quantlab.png');
  });
});
