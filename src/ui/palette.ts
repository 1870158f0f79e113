// One colour per type, stable across charts, told apart with the common colour-vision
// deficiencies: Okabe–Ito's (without its yellow and black, too faint on white and too dark on
// the dark theme), then grey and Paul Tol's muted olive, wine, teal, purple and sand.
const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#7F7F7F', '#999933', '#882255', '#44AA99', '#AA4499', '#DDCC77'];

export function colourOf(index: number): string {
  return COLOURS[index % COLOURS.length];
}
