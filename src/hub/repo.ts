// A model on the Hub as quantlab opens it: the revision pinned to its commit hash (the
// model API), the folder listed (the tree API), the model's files chosen (safetensors with
// their index, config.json and tokenizer.model; or one GGUF), and one ByteSource per file
// that reads byte ranges on demand. Nothing is downloaded whole except the small index
// that says which shards a model has.

import { type ByteSource, checkRange } from '../formats/bytes.ts';
import { FormatError } from '../formats/errors.ts';
import { HubClient, type HubClientOptions, type HubFileHandle } from './client.ts';
import { type HubRef, hubRefText, parseHubRef } from './ref.ts';

/** A file as the Hub's tree API lists it. */
export interface HubListedFile {
  /** Path in the repository. */
  readonly path: string;
  readonly size: number;
}

export interface HubModel {
  readonly ref: HubRef;
  /** The commit every file is read at: a branch moving on does not change what is read. */
  readonly commit: string;
  readonly files: readonly HubListedFile[];
  /** One per file, named by the file's base name (as local files are). */
  readonly sources: readonly ByteSource[];
  /** Its counters (bytesRead, bytesNeeded, requests) say what the reads cost. */
  readonly client: HubClient;
}

/** Side files a safetensors model is read with. */
const SIDE_FILES = ['config.json', 'tokenizer.model'];
const SHARD = /-\d{5}-of-\d{5}\.safetensors$/;
/** Index files are small JSON (formats/limits MAX_JSON_FILE_BYTES bounds them again when read). */
const MAX_INDEX_BYTES = 64 << 20;
const MAX_TREE_PAGES = 1000;

/** Lists a repository, chooses its model files and opens them; `ref` as parseHubRef takes it. */
export async function openHubModel(ref: HubRef | string, options: HubClientOptions = {}): Promise<HubModel> {
  const client = new HubClient(options);
  const hubRef = typeof ref === 'string' ? parseHubRef(ref, client.endpoint) : ref;
  const commit = await resolveCommit(client, hubRef);
  const { folder, named, entries } = await locate(client, hubRef, commit);
  const chosen = await chooseModelFiles(entries, { ref: hubRef, folder, named, readIndex: (file) => readIndex(client, hubRef, commit, file) });
  const sources = chosen.map((file) => hubSource(client, fileHandle(client, hubRef, commit, file)));
  return { ref: hubRef, commit, files: chosen, sources, client };
}

function label(ref: HubRef, path = ''): string {
  return hubRefText({ ...ref, path });
}

/** The commit hash of the revision (model API: GET /api/models/{repo}/revision/{rev}). */
async function resolveCommit(client: HubClient, ref: HubRef): Promise<string> {
  const path = `/api/models/${ref.repo}/revision/${encodeURIComponent(ref.revision)}`;
  const { value } = await client.json(path, label(ref));
  const sha = (value as { sha?: unknown } | null)?.sha;
  if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) {
    throw new FormatError(label(ref), 0, `the Hub's model API gave no commit hash (sha) for revision '${ref.revision}'`);
  }
  return sha;
}

/** The files of one folder at a commit (tree API, every page). */
async function listFolder(client: HubClient, ref: HubRef, commit: string, folder: string): Promise<{ path: string; size: number; type: string }[]> {
  const entries: { path: string; size: number; type: string }[] = [];
  let path: string | null = `/api/models/${ref.repo}/tree/${commit}${folder ? `/${folder.split('/').map(encodeURIComponent).join('/')}` : ''}`;
  for (let page = 0; path !== null; page++) {
    if (page >= MAX_TREE_PAGES) throw new FormatError(label(ref, folder), 0, `the tree API gave more than ${MAX_TREE_PAGES} pages`);
    const { value, response } = await client.json(path, label(ref, folder));
    if (!Array.isArray(value)) throw new FormatError(label(ref, folder), 0, "the Hub's tree API did not answer with a list of files");
    for (const e of value as { path?: unknown; size?: unknown; type?: unknown }[]) {
      if (typeof e?.path !== 'string' || typeof e.type !== 'string') throw new FormatError(label(ref, folder), 0, `the tree API listed an entry without a path or type: ${JSON.stringify(e)}`);
      const size = e.type === 'file' ? e.size : 0;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new FormatError(label(ref, e.path), 0, `the tree API gives a bad size (${String(e.size)})`);
      entries.push({ path: e.path, size, type: e.type });
    }
    path = nextPage(client, response.headers.get('link'), ref, folder);
  }
  return entries;
}

/** The Link header's rel="next" as a path on the Hub; null on the last page. */
function nextPage(client: HubClient, link: string | null, ref: HubRef, folder: string): string | null {
  const next = link?.split(',').find((part) => /rel="?next"?/.test(part));
  const url = next && /<([^>]+)>/.exec(next)?.[1];
  if (!url) return null;
  const absolute = new URL(url, client.endpoint);
  if (!absolute.href.startsWith(client.endpoint)) throw new FormatError(label(ref, folder), 0, `the tree API's next page is on another host (${absolute.origin})`);
  return absolute.href.slice(client.endpoint.length);
}

/** The folder to choose from, and the file the reference names (if it names one). */
async function locate(client: HubClient, ref: HubRef, commit: string) {
  const parent = ref.path.includes('/') ? ref.path.slice(0, ref.path.lastIndexOf('/')) : '';
  const listed = await listFolder(client, ref, commit, ref.path ? parent : '');
  if (!ref.path) return { folder: '', named: undefined, entries: files(listed) };
  const entry = listed.find((e) => e.path === ref.path);
  if (!entry) throw new FormatError(label(ref, ref.path), 0, `no file or folder '${ref.path}' in ${ref.repo} at ${ref.revision} (commit ${commit.slice(0, 7)})`);
  if (entry.type === 'directory') return { folder: ref.path, named: undefined, entries: files(await listFolder(client, ref, commit, ref.path)) };
  return { folder: parent, named: entry.path, entries: files(listed) };
}

function files(entries: readonly { path: string; size: number; type: string }[]): HubListedFile[] {
  return entries.filter((e) => e.type === 'file').map(({ path, size }) => ({ path, size }));
}

interface Choice {
  readonly ref: HubRef;
  readonly folder: string;
  /** The file the reference names, if it names one. */
  readonly named: string | undefined;
  /** Reads a safetensors index (to learn its shards). */
  readonly readIndex: (file: HubListedFile) => Promise<unknown>;
}

const base = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/**
 * The model's files among a folder's: the named file (a GGUF; a safetensors file or index
 * with config.json and tokenizer.model beside it), else the folder's safetensors index and
 * its shards, else its one safetensors file or shard set, else its one GGUF.
 */
export async function chooseModelFiles(entries: readonly HubListedFile[], choice: Choice): Promise<HubListedFile[]> {
  const { ref, folder, named } = choice;
  const where = label(ref, named ?? folder);
  const by = (test: (name: string) => boolean) => entries.filter((e) => test(base(e.path).toLowerCase()));
  const sides = by((n) => SIDE_FILES.includes(n));
  const isIndex = (n: string) => n.endsWith('.safetensors.index.json');
  if (named !== undefined) {
    const file = entries.find((e) => e.path === named)!;
    const name = base(named).toLowerCase();
    if (name.endsWith('.gguf')) return [file];
    if (isIndex(name)) return [file, ...(await shardsOf(file, entries, choice)), ...sides];
    if (name.endsWith('.safetensors')) return [file, ...sides];
    throw new FormatError(where, 0, 'is not a model file (a .gguf, .safetensors or .safetensors.index.json)');
  }
  const indexes = by(isIndex);
  if (indexes.length > 0) {
    const index = indexes.length === 1 ? indexes[0] : indexes.find((e) => base(e.path) === 'model.safetensors.index.json');
    if (!index) throw new FormatError(where, 0, `has ${indexes.length} safetensors indexes (${indexes.map((e) => base(e.path)).join(', ')}): name one, as ${label(ref, indexes[0].path)}`);
    return [index, ...(await shardsOf(index, entries, choice)), ...sides];
  }
  const safetensors = by((n) => n.endsWith('.safetensors'));
  if (safetensors.length === 1) return [safetensors[0], ...sides];
  if (safetensors.length > 1) {
    if (safetensors.every((e) => SHARD.test(e.path))) return [...safetensors, ...sides];
    throw new FormatError(where, 0, `has ${safetensors.length} safetensors files and no index (${list(safetensors)}): name one, as ${label(ref, safetensors[0].path)}`);
  }
  // Vision projectors (mmproj-*.gguf) sit beside a language model's GGUF; they are not it.
  const ggufs = by((n) => n.endsWith('.gguf') && !n.startsWith('mmproj'));
  if (ggufs.length === 1) return [ggufs[0]];
  if (ggufs.length > 1) throw new FormatError(where, 0, `has ${ggufs.length} GGUF files (${list(ggufs)}): name one, as ${label(ref, ggufs[0].path)}`);
  throw new FormatError(where, 0, `has no model files (no .safetensors or .gguf among its ${entries.length} files${entries.length ? `: ${list(entries)}` : ''})`);
}

function list(files: readonly HubListedFile[], most = 6): string {
  const names = files.slice(0, most).map((e) => base(e.path));
  return files.length > most ? `${names.join(', ')}, ...` : names.join(', ');
}

/** The shard files an index's weight_map names, each checked to be in the folder. */
async function shardsOf(index: HubListedFile, entries: readonly HubListedFile[], choice: Choice): Promise<HubListedFile[]> {
  const json = await choice.readIndex(index);
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  const where = label(choice.ref, index.path);
  if (typeof map !== 'object' || map === null) throw new FormatError(where, 0, 'the index has no weight_map object');
  const names = [...new Set(Object.values(map as Record<string, unknown>))].sort();
  const dir = index.path.includes('/') ? index.path.slice(0, index.path.lastIndexOf('/') + 1) : '';
  return names.map((name) => {
    if (typeof name !== 'string') throw new FormatError(where, 0, `weight_map names a shard that is not a string (${JSON.stringify(name)})`);
    const shard = entries.find((e) => e.path === `${dir}${name}`);
    if (!shard) throw new FormatError(where, 0, `weight_map names shard '${name}', which is not in the repository at this revision`);
    return shard;
  });
}

async function readIndex(client: HubClient, ref: HubRef, commit: string, file: HubListedFile): Promise<unknown> {
  const where = label(ref, file.path);
  if (file.size > MAX_INDEX_BYTES) throw new FormatError(where, 0, `the index is ${file.size} bytes, above the limit of ${MAX_INDEX_BYTES}`);
  const bytes = await client.readRange(fileHandle(client, ref, commit, file), 0, file.size);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new FormatError(where, 0, `the index is not JSON (${(e as Error).message})`);
  }
}

function fileHandle(client: HubClient, ref: HubRef, commit: string, file: HubListedFile): HubFileHandle {
  const path = file.path.split('/').map(encodeURIComponent).join('/');
  return { label: label(ref, file.path), url: `${client.endpoint}/${ref.repo}/resolve/${commit}/${path}`, size: file.size };
}

/** A ByteSource over a Hub file: each read is one ranged GET (resumed, retried, ETag-checked by the client). */
export function hubSource(client: HubClient, file: HubFileHandle): ByteSource {
  const source: ByteSource = {
    name: base(file.label),
    size: file.size,
    async read(offset, length, into) {
      checkRange(source, offset, length);
      return client.readRange(file, offset, length, into);
    },
  };
  return source;
}
