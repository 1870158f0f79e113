// The error a cancelled job rejects with (engine.ts, and the CLI's export without the engine).
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}
