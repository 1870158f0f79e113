// The one error type every parser under formats/ throws for a bad file. It names the
// file, the byte offset where the problem sits, and the reason, so that the UI and the
// CLI can show one precise line (house rule 6: nothing below the UI swallows it).

export class FormatError extends Error {
  override readonly name = 'FormatError';

  constructor(
    /** Name of the file (ByteSource.name). */
    readonly file: string,
    /** Absolute byte offset in that file where the problem applies. */
    readonly offset: number,
    /** What is wrong, in words, without the file and offset. */
    readonly reason: string,
  ) {
    super(`${file}: at byte ${offset}: ${reason}`);
  }
}

export function isFormatError(error: unknown): error is FormatError {
  return error instanceof FormatError;
}

/** Several files of one model were bad: one FormatError per file. It is itself the
 *  first of them (so `catch (e: FormatError)` code shows something precise) and says
 *  how many more there are. */
export class FormatErrorList extends FormatError {
  constructor(readonly errors: readonly FormatError[]) {
    const [first] = errors;
    const more = errors.length - 1;
    super(first.file, first.offset, more > 0 ? `${first.reason} (and ${more} more bad file${more > 1 ? 's' : ''})` : first.reason);
  }
}
