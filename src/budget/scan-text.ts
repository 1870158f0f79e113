// The text the sensitivity scan measures each tensor's KL on: short (each (tensor, type)
// pair is one forward pass over it), in the style of TinyStories like the eval's text
// (model/eval-text.ts) but a different story, so that plans are measured on text they
// were not fitted to. Written for quantlab (MIT, as the rest of the project). Not the
// calibration text (calibrate/calibration-text.ts: ~1,300 tokens for GPTQ's Hessians).
export const SCAN_TEXT =
  'Lily had a little cat named Max. Max liked to sleep in the sun by the window. ' +
  'One morning, Lily could not find Max. She looked under the bed and behind the door. ' +
  'Then she heard a soft sound in the garden. Max was sitting in a big box with a bird next to him. ' +
  'Lily smiled and gave Max a hug. They went inside and had some warm milk.';
