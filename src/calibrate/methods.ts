// The methods the calibration comparison (compare.ts) scores, with their labels: a module
// of its own so that the page (ui/CalibrationTab.tsx) gets them without the forward pass.
export const CALIBRATION_METHODS = ['rtn', 'q4_K', 'q4_K_imatrix', 'awq', 'gptq', 'gptq_q4_K'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

export const METHOD_LABELS: Readonly<Record<CalibrationMethod, string>> = {
  rtn: 'RTN',
  q4_K: 'Q4_K',
  q4_K_imatrix: 'Q4_K + imatrix',
  awq: 'AWQ',
  gptq: 'GPTQ',
  gptq_q4_K: 'GPTQ → Q4_K',
};
