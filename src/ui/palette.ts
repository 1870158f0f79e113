// One colour per type, stable across charts (Okabe–Ito based, readable on white).
const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#7F7F7F', '#8C6D31', '#F0E442', '#332288', '#117733', '#AA4499'];

export function colourOf(index: number): string {
  return COLOURS[index % COLOURS.length];
}
