// Node only: a ByteSource over a file path. Kept apart from bytes.ts so that the
// browser bundle never imports node:fs.

import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { type ByteSource, checkRange } from './bytes.ts';
import { FormatError } from './errors.ts';

/** Opens `path` for ranged reads; each read opens, reads at a position, and closes, so
 *  no file handle outlives a call (a model may have hundreds of shards). */
export async function fileSource(path: string): Promise<ByteSource> {
  const handle = await open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } finally {
    await handle.close();
  }
  const source: ByteSource = {
    name: basename(path),
    size,
    async read(offset, length, into) {
      checkRange(source, offset, length);
      // Into the caller's buffer when it gives one: a fresh buffer costs a page fault every
      // 4 KiB as the kernel fills it (a fifth of a Q8_0 export's CPU time).
      const bytes = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
      const file = await open(path, 'r');
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await file.read(bytes, done, length - done, offset + done);
          if (bytesRead === 0) {
            const now = (await file.stat()).size;
            throw new FormatError(source.name, offset + done, `cannot read here: the file is now ${now} bytes, it was ${size} when opened (changed on disk since)`);
          }
          done += bytesRead;
        }
      } finally {
        await file.close();
      }
      return bytes;
    },
  };
  return source;
}
