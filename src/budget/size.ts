// Sizes as people write them (a module of its own: the page's main thread imports it without the engine).

/** `300KB`, `1.5GiB`, `123456` (bytes; KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KIB|MIB|GIB)?\s*$/i.exec(text);
  if (!m) throw new Error(`'${text}' is not a size (e.g. 300KB, 4.2GB, 1.5GiB, 123456)`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const scale: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3 };
  return Math.floor(Number(m[1]) * scale[unit]);
}
