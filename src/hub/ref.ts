// Where a model lives on the Hugging Face Hub, as the user writes it: `org/name`,
// `org/name@revision/path`, `hf://org/name[@revision][/path]`, or a huggingface.co URL
// (`https://huggingface.co/org/name/tree/REV/folder`, `.../blob/REV/file`, `.../resolve/REV/file`).

/** The default Hub: huggingface_hub and huggingface.js read HF_ENDPOINT to change it. */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

export interface HubRef {
  /** `org/name`. */
  readonly repo: string;
  /** A branch, tag or commit hash; 'main' unless given. */
  readonly revision: string;
  /** A file or folder inside the repository; '' for its root. */
  readonly path: string;
}

/** A bad reference: which text, and what is wrong with it. */
export class HubRefError extends Error {
  override readonly name = 'HubRefError';
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** True when a command-line argument means the Hub: hf://..., or a URL on huggingface.co or on `endpoint`. */
export function isHubArgument(text: string, endpoint = DEFAULT_HUB_ENDPOINT): boolean {
  if (text.startsWith('hf://')) return true;
  return [DEFAULT_HUB_ENDPOINT, endpoint].some((hub) => text.startsWith(`${hub.replace(/\/+$/, '')}/`));
}

/**
 * Parses a reference. `endpoint` is the Hub whose URLs are accepted besides huggingface.co's
 * (a mirror's `https://mirror/org/name/...`).
 */
export function parseHubRef(text: string, endpoint = DEFAULT_HUB_ENDPOINT): HubRef {
  const input = text.trim();
  const url = hubUrlPath(input, endpoint);
  if (url !== null) return parseUrlPath(input, url);
  const body = input.startsWith('hf://') ? input.slice('hf://'.length) : input;
  const [org, nameAndRevision, ...rest] = body.split('/');
  const at = (nameAndRevision ?? '').indexOf('@');
  const name = at < 0 ? nameAndRevision : nameAndRevision.slice(0, at);
  // A revision with a slash (refs/pr/1) is written with %2F, as huggingface_hub's HfFileSystem does.
  const revision = at < 0 ? 'main' : decodeURIComponent(nameAndRevision.slice(at + 1));
  return checked(input, { repo: `${org}/${name ?? ''}`, revision, path: rest.filter(Boolean).join('/') });
}

/** The path part of a Hub URL (huggingface.co's or the endpoint's), or null for other text. */
function hubUrlPath(input: string, endpoint: string): string | null {
  if (!/^https?:\/\//.test(input)) return null;
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new HubRefError(`'${input}' is not a URL`);
  }
  const hubs = [new URL(DEFAULT_HUB_ENDPOINT), new URL(endpoint)];
  const hub = hubs.find((h) => h.origin === url.origin && url.pathname.startsWith(h.pathname.replace(/\/?$/, '/')));
  if (!hub) throw new HubRefError(`'${input}' is not a Hub URL (expected ${hubs.map((h) => h.origin).join(' or ')})`);
  return url.pathname.slice(hub.pathname.replace(/\/?$/, '/').length);
}

function parseUrlPath(input: string, path: string): HubRef {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [org, name, kind, revision, ...rest] = parts;
  if (kind === undefined) return checked(input, { repo: `${org}/${name}`, revision: 'main', path: '' });
  if (kind !== 'tree' && kind !== 'blob' && kind !== 'resolve') {
    throw new HubRefError(`'${input}': expected /ORG/NAME, /ORG/NAME/tree/REV, /ORG/NAME/blob/REV/FILE or /ORG/NAME/resolve/REV/FILE`);
  }
  return checked(input, { repo: `${org}/${name}`, revision: revision ?? 'main', path: rest.join('/') });
}

function checked(input: string, ref: HubRef): HubRef {
  const [org, name] = ref.repo.split('/');
  if (!org || !name || !NAME.test(org) || !NAME.test(name)) {
    throw new HubRefError(`'${input}' does not name a repository as ORG/NAME (letters, digits, '.', '_', '-')`);
  }
  if (!ref.revision || /(^|\/)\.\.(\/|$)/.test(ref.revision) || ref.path.split('/').includes('..')) {
    throw new HubRefError(`'${input}': bad revision or path`);
  }
  return ref;
}

/** The reference as the CLI writes it: hf://org/name@revision/path. */
export function hubRefText(ref: HubRef): string {
  const revision = ref.revision === 'main' ? '' : `@${encodeURIComponent(ref.revision)}`;
  return `hf://${ref.repo}${revision}${ref.path ? `/${ref.path}` : ''}`;
}
