/**
 * The HTTP side of the front end, shared by the writing page and the dashboard: the API key (from
 * `?key=`, remembered in localStorage; sent as `Authorization: Bearer`, and by app.js as socket.io's
 * `auth.token`) and a fetch wrapper that turns `{"error": {code, message}}` answers into `ApiError`s.
 * Without a key nothing is sent, so this is harmless on a server without auth.
 */

const KEY_STORAGE = 'corgi.apiKey';

function readApiKey() {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('key');
  if (fromUrl) {
    try {
      localStorage.setItem(KEY_STORAGE, fromUrl);
    } catch {
      // Storage can be disabled (private mode); the key still works for this page view.
    }
    // Keep the key out of the address bar and the browser history.
    url.searchParams.delete('key');
    window.history.replaceState(null, '', url);
    return fromUrl;
  }
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

/** The API key for this page, or null. */
export const apiKey = readApiKey();

let askedForKey = false;

/**
 * Asks (once per page) for an API key after the server refused a call for the lack of a valid one
 * (a server bound beyond loopback), then reloads with `?key=`, which `readApiKey` stores and strips,
 * so every fetch and the socket use it.
 */
export function askForApiKey(reason) {
  if (askedForKey) return;
  askedForKey = true;
  const key = window.prompt(`${reason}\n\nPaste an API key (it stays in this browser's localStorage):`, '');
  if (!key?.trim()) return;
  const url = new URL(window.location.href);
  url.searchParams.set('key', key.trim());
  window.location.assign(url);
}

/** An API error with the server's `{code, message}`; the message starts with the offending field. */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

/** fetch + JSON with the API key; a non-2xx answer or a network failure throws an `ApiError`. */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError('network', 'network: the server cannot be reached', 0);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error ?? {};
    if (response.status === 401) askForApiKey(error.message ?? 'This server needs an API key.');
    throw new ApiError(error.code ?? 'http', error.message ?? `HTTP ${response.status}`, response.status);
  }
  return data;
}
