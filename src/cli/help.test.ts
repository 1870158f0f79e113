// `quantlab help COMMAND` / `COMMAND --help` list every option the command parses, with its
// words and default; a one-letter typo in a tensor, type, preset or command name is answered
// with the nearest name.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { COMMANDS } from './main.ts';
import { commandOptions, OPTION_HELP } from './help.ts';
import { runInProcess } from './testing.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');

describe('help', () => {
  for (const name of COMMANDS.keys()) {
    it(`${name}: every option it parses is in its help, with words, defaults and examples`, async () => {
      const command = await COMMANDS.get(name)!();
      const parsed = Object.keys(await commandOptions(command)).sort();
      expect(parsed.length).toBeGreaterThan(0);
      // Words for exactly the options the command parses: none missing, none left over.
      expect(Object.keys(OPTION_HELP[name].options).sort()).toEqual(parsed);
      const { code, stdout } = await runInProcess(['help', name]);
      expect(code).toBe(0);
      expect(stdout).toContain(`usage: ${command.usage}`);
      for (const option of parsed) {
        const doc = OPTION_HELP[name].options[option];
        const line = stdout.split('\n').find((l) => new RegExp(`(^|\\s)--${option}( |$)`).test(l));
        expect(line, `--${option}`).toBeDefined();
        expect(stdout).toContain(doc.text);
        if (doc.default) expect(stdout).toContain(`default: ${doc.default}`);
      }
      expect(stdout).not.toContain('(not described yet)');
      expect(stdout).toMatch(/examples:\n {2}quantlab /);
      // `COMMAND --help` prints the same, and runs nothing (no FILE needed).
      expect(await runInProcess([name, '--help'])).toEqual({ code: 0, stdout, stderr: '' });
      expect((await runInProcess([name, '-h'])).stdout).toBe(stdout);
    });
  }
});

describe('did you mean', () => {
  it('a misspelt tensor name', async () => {
    const { code, stderr } = await runInProcess(['compare', STORIES, '--tensor', 'blk.0.attn_q.weigth', '--types', 'q8_0']);
    expect(code).toBe(1);
    expect(stderr).toBe("quantlab compare: no tensor named 'blk.0.attn_q.weigth' in this model (did you mean 'blk.0.attn_q.weight'?)\n");
  });

  it('a misspelt type (compare --types, quantize --type)', async () => {
    expect((await runInProcess(['compare', STORIES, '--tensor', 'blk.0.attn_q.weight', '--types', 'q8_0,iq4_xz'])).stderr).toMatch(/^quantlab compare: unknown type 'iq4_xz' \(did you mean 'iq4_xs'\?\)/);
    expect((await runInProcess(['quantize', STORIES, '-o', '/nonexistent/x.gguf', '--type', 'q6_L'])).stderr).toMatch(/--type: unknown type 'q6_L' \(did you mean 'q6_K'\?\)/);
  });

  it('a misspelt preset (quantize --preset, eval --presets)', async () => {
    expect((await runInProcess(['eval', STORIES, '--presets', 'Q8_O'])).stderr).toMatch(/unknown preset 'Q8_O' \(did you mean 'Q8_0'\?\)/);
    const { code, stderr } = await runInProcess(['quantize', STORIES, '-o', '/nonexistent/x.gguf', '--preset', 'Q5_K_N']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/unknown preset Q5_K_N \(did you mean 'Q5_K_M' or 'Q5_K_S'\?\)/);
  });

  it('a misspelt command, and none for a word near nothing', async () => {
    expect((await runInProcess(['comprae'])).stderr).toBe("quantlab: unknown command 'comprae' (did you mean 'compare'?) (try 'quantlab help')\n");
    expect((await runInProcess(['help', 'quantise'])).stderr).toContain("(did you mean 'quantize'?)");
    expect((await runInProcess(['frobnicate'])).stderr).toBe("quantlab: unknown command 'frobnicate' (try 'quantlab help')\n");
  });
});
