// The node's JSON API, same origin. Errors become exceptions carrying the node's
// {"error": ...} text.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function get(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, String(value));
  }
  const resp = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try {
    body = await resp.json();
  } catch {
    throw new ApiError(resp.status, `${resp.status} ${resp.statusText}: not JSON`);
  }
  if (!resp.ok && resp.status !== 202) {
    throw new ApiError(resp.status, body && body.error ? body.error : `${resp.status} ${resp.statusText}`);
  }
  return body;
}

/** Every page of a paginated list, up to `max` items (bounded: never the whole chain). */
export async function collect(path, params, max) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(path, { ...params, limit: 200, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return { items: items.slice(0, max), truncated: Boolean(cursor) || items.length > max };
}
