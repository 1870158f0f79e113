// The built-in text that `quantlab eval` and the "Model output" panel score a model on:
// a short children's story in the style of TinyStories (simple words, so that the tiny
// models quantlab can run in a browser predict it well), written for quantlab (MIT, as
// the rest of the project). About 200 tokens with a 512-token SentencePiece vocabulary
// (stories260K), fewer with a 32000-token Llama vocabulary.
export const EVAL_TEXT =
  'Once upon a time, there was a little boy named Tim. Tim had a red ball that he loved very much. ' +
  'Every day, he played with his ball in the big green park near his house. ' +
  'One day, Tim kicked the ball too hard and it went over the fence. Tim was sad. ' +
  'He looked for his mom and said, "Mom, my ball is gone!" ' +
  'His mom smiled and said, "Let us go and find it together." ' +
  'They walked to the other side of the fence and saw a small dog with the red ball. ' +
  'Tim laughed and played with the dog and the ball. ' +
  'From that day on, Tim and the dog were best friends.';

/** The prompt of the greedy continuation shown side by side per preset. */
export const EVAL_PROMPT = 'Once upon a time';
