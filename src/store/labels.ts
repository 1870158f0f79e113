// Names the UI shows that the domain defines (pure data, no code that runs a job): the
// calibration methods and their labels.
export { CALIBRATION_METHODS, METHOD_LABELS } from '../calibrate/methods.ts';
