/**
 * The CLI's way into a running server's admin routes (`corgi keys … --server`, `corgi promote …
 * --server`): the embedded database lives inside `corgi serve`, so operators go through HTTP there.
 */

/**
 * Calls `path` on `server` with `apiKey` (an admin key; the commands pass `CORGI_API_KEY`) as the
 * bearer key and returns the JSON answer; the server's `{error: {message}}` (or the HTTP status)
 * becomes the thrown message.
 */
export async function callAdminRoute<T>(
  server: string,
  method: string,
  path: string,
  { body, apiKey }: { body?: unknown; apiKey?: string } = {},
): Promise<T> {
  const key = apiKey;
  let response: Response;
  try {
    response = await fetch(new URL(path, server), {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(key ? { authorization: `Bearer ${key}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new Error(`--server: cannot reach ${server} (${(error as Error).message})`);
  }
  const payload = (await response.json().catch(() => null)) as (T & { error?: { message?: string } }) | null;
  if (!response.ok || !payload) {
    throw new Error(payload?.error?.message ?? `--server: ${server} answered HTTP ${response.status}`);
  }
  return payload;
}
