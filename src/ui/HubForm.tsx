import { useState, type FormEvent } from 'react';
import { useApp } from '../store/store.ts';

/** The Hub the page reads from: ?hf_endpoint=URL (a mirror, or a test's server), else huggingface.co. */
export function hubEndpointFromPage(search = globalThis.location?.search ?? ''): string {
  return new URLSearchParams(search).get('hf_endpoint') || 'https://huggingface.co';
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

const mib = (bytes: number) => `${(bytes / (1 << 20)).toFixed(bytes < 10 << 20 ? 2 : 1)} MiB`;

/**
 * Open a model on the Hugging Face Hub by name. Nothing is sent anywhere until Open is
 * pressed; a token is asked for only when the Hub answers 401/403, and kept in this page's
 * memory only (never stored), sent only to the Hub (docs/hub.md).
 */
export function HubForm({ busy }: { busy: boolean }) {
  const loadHub = useApp((s) => s.loadHub);
  const cancel = useApp((s) => s.cancelHubLoad);
  const model = useApp((s) => s.model);
  const transfer = useApp((s) => s.hubTransfer);
  const [ref, setRef] = useState('');
  const [endpoint, setEndpoint] = useState(hubEndpointFromPage);
  const [token, setToken] = useState('');
  const [tokenReason, setTokenReason] = useState<string | null>(null);
  const [opening, setOpening] = useState(false);

  const open = async (e: FormEvent) => {
    e.preventDefault();
    if (!ref.trim()) return;
    setOpening(true);
    try {
      const result = await loadHub({ ref: ref.trim(), endpoint, token: tokenReason !== null && token ? token : undefined });
      setTokenReason(result.outcome === 'needs-token' ? result.message : null);
      if (result.outcome === 'loaded') setToken('');
    } finally {
      setOpening(false);
    }
  };

  const shown = transfer && (transfer.model === null || transfer.model === model) ? transfer : null;
  return (
    <form className="hub-form" aria-label="Open from the Hugging Face Hub" onSubmit={(e) => void open(e)}>
      <div className="row">
        <input
          type="text"
          aria-label="Hub model"
          placeholder="org/name, org/name@revision/file.gguf or a huggingface.co URL"
          value={ref}
          onChange={(e) => setRef(e.target.value)}
          disabled={busy}
          spellCheck={false}
        />
        <button type="submit" disabled={busy || !ref.trim()}>
          Open from the Hub
        </button>
        {opening && (
          <button type="button" onClick={() => cancel()}>
            Cancel
          </button>
        )}
      </div>
      {tokenReason !== null && (
        <div className="row" role="group" aria-label="Hub access token">
          <span className="muted">{tokenReason}</span>
          <input type="password" aria-label="Access token" placeholder="hf_…" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />
          <span className="muted">kept in this page's memory only, sent only to {hostOf(endpoint)}</span>
        </div>
      )}
      {shown && (
        <p className="muted" aria-label="Hub transfer">
          Hub: {mib(shown.read)} read of {mib(shown.needed)} needed
        </p>
      )}
      <details>
        <summary className="muted">Hub settings</summary>
        <label>
          Endpoint (HF_ENDPOINT){' '}
          <input type="url" aria-label="Hub endpoint" value={endpoint} onChange={(e) => setEndpoint(e.target.value)} />
        </label>
        <p className="muted">
          Only the model's headers, and then the tensors a view needs, are read, with HTTP range requests. A mirror's host must be allowed by
          the page's Content-Security-Policy.
        </p>
      </details>
    </form>
  );
}
