// The node's JSON API, same origin. Errors become exceptions carrying the node's
// {"error": ...} text.
//
// Signed reads (node/api/auth.py, docs/architecture.md "Reads are for members"): once a
// member's key file is loaded (signIn), every request carries
// "Authorization: GrantChain-Ed25519 key=.., ts=.., nonce=.., sig=.." signed with Web
// Crypto Ed25519 over the canonical form of chain/rpc_auth.py. The key is imported
// non-extractable and lives in this page's memory only; reloading the page forgets it.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// PKCS #8 for an Ed25519 private key (RFC 8410) up to its 32-byte seed.
const PKCS8_ED25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
let signer = null; // {key: CryptoKey, publicHex, chainId}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** Read as the identity whose key file (64 hex digits, as grantchain writes them) is given;
 * returns its public key in hex. */
export async function signIn(keyText) {
  const hex = keyText.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error("a key file holds 64 hex digits (32 bytes)");
  const seed = hex.match(/../g).map((b) => parseInt(b, 16));
  const pkcs8 = new Uint8Array([...PKCS8_ED25519, ...seed]);
  const open = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", open);
  const publicKey = Uint8Array.from(atob(jwk.x.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  const status = await (await fetch("/v1/status", { headers: { Accept: "application/json" } })).json();
  signer = { key, publicHex: toHex(publicKey), chainId: status.chain_id };
  return signer.publicHex;
}

export function signedIn() {
  return signer !== null;
}

/** The Authorization header of a GET of `target` (path and raw query), or null. */
async function authorization(target) {
  if (signer === null) return null;
  const ts = Date.now();
  const nonce = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const text = `grantchain-rpc-v1\n${signer.chainId}\nGET\n${target}\n${ts}\n${nonce}\n${EMPTY_SHA256}`;
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, signer.key, new TextEncoder().encode(text)));
  return `GrantChain-Ed25519 key=${signer.publicHex}, ts=${ts}, nonce=${nonce}, sig=${toHex(sig)}`;
}

async function headers(url, extra) {
  const out = { Accept: "application/json", ...extra };
  const auth = await authorization(url.pathname + url.search);
  if (auth !== null) out.Authorization = auth;
  return out;
}

export async function get(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, String(value));
  }
  const resp = await fetch(url, { headers: await headers(url) });
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

/** The commit stream: the browser's EventSource where reads are open, else the same
 * events read with a signed fetch (an EventSource cannot send headers), resumed after a
 * failure from the last block with Last-Event-ID. Dispatches "open", "block" and "error". */
export function eventStream(path) {
  return signer === null ? new EventSource(path) : new SignedEventSource(path);
}

class SignedEventSource extends EventTarget {
  constructor(path) {
    super();
    this.path = path;
    this.lastId = null;
    this.closed = false;
    this.abort = null;
    this.run();
  }

  close() {
    this.closed = true;
    if (this.abort) this.abort.abort();
  }

  async run() {
    while (!this.closed) {
      try {
        await this.once();
      } catch {
        // a failed or ended connection: report it and try again
      }
      if (this.closed) return;
      this.dispatchEvent(new Event("error"));
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  async once() {
    this.abort = new AbortController();
    const url = new URL(this.path, window.location.origin);
    const extra = { Accept: "text/event-stream" };
    if (this.lastId !== null) extra["Last-Event-ID"] = this.lastId;
    const resp = await fetch(url, { headers: await headers(url, extra), signal: this.abort.signal });
    if (!resp.ok || !resp.body) throw new Error(`stream: ${resp.status}`);
    this.dispatchEvent(new Event("open"));
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this.event(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  event(text) {
    let name = "message";
    let id = null;
    const data = [];
    for (const line of text.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (id !== null) this.lastId = id;
    if (data.length) this.dispatchEvent(new MessageEvent(name, { data: data.join("\n"), lastEventId: id ?? "" }));
  }
}
