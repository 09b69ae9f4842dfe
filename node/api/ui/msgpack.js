// Canonical msgpack (chain/codec.py) for the browser: a strict decoder and the encoder
// that defines canonical bytes. A value is accepted only if encoding it again gives the
// bytes received, exactly as codec.decode does.
//
// Values: null, booleans, numbers (safe integers) or BigInt (integers beyond 2^53),
// strings, Uint8Array (bin), arrays, and MsgMap (a map as [key, value] pairs in wire
// order, so that order can be checked).

export const PAYLOAD_DEPTH_MAX = 8;

export class DecodeError extends Error {}

export class MsgMap {
  constructor(entries) {
    this.entries = entries;
  }
  get(key) {
    const found = this.entries.find(([k]) => k === key);
    return found === undefined ? undefined : found[1];
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8enc = new TextEncoder();

function toNumberIfSafe(big) {
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(big)
    : big;
}

class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.i = 0;
  }
  need(n) {
    if (this.i + n > this.b.length) throw new DecodeError("malformed msgpack: truncated input");
  }
  u8() { this.need(1); return this.b[this.i++]; }
  u16() { this.need(2); const x = this.v.getUint16(this.i); this.i += 2; return x; }
  u32() { this.need(4); const x = this.v.getUint32(this.i); this.i += 4; return x; }
  u64() { this.need(8); const x = this.v.getBigUint64(this.i); this.i += 8; return toNumberIfSafe(x); }
  i8() { this.need(1); const x = this.v.getInt8(this.i); this.i += 1; return x; }
  i16() { this.need(2); const x = this.v.getInt16(this.i); this.i += 2; return x; }
  i32() { this.need(4); const x = this.v.getInt32(this.i); this.i += 4; return x; }
  i64() { this.need(8); const x = this.v.getBigInt64(this.i); this.i += 8; return toNumberIfSafe(x); }
  bytes(n) { this.need(n); const out = this.b.slice(this.i, this.i + n); this.i += n; return out; }
  str(n) {
    try {
      return utf8.decode(this.bytes(n));
    } catch (e) {
      if (e instanceof DecodeError) throw e;
      throw new DecodeError("a str is not valid UTF-8");
    }
  }
  array(n, depth) {
    const out = [];
    for (let k = 0; k < n; k++) out.push(this.value(depth + 1));
    return out;
  }
  map(n, depth) {
    const out = [];
    for (let k = 0; k < n; k++) {
      const key = this.value(depth + 1);
      if (typeof key !== "string" && !(key instanceof Uint8Array)) {
        throw new DecodeError("malformed msgpack: map key is not str or bytes");
      }
      out.push([key, this.value(depth + 1)]);
    }
    return new MsgMap(out);
  }
  value(depth) {
    if (depth > 512) throw new DecodeError("malformed msgpack: nesting too deep");
    const t = this.u8();
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t >= 0xa0 && t <= 0xbf) return this.str(t & 0x1f);
    if (t >= 0x90 && t <= 0x9f) return this.array(t & 0x0f, depth);
    if (t >= 0x80 && t <= 0x8f) return this.map(t & 0x0f, depth);
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bytes(this.u8());
      case 0xc5: return this.bytes(this.u16());
      case 0xc6: return this.bytes(this.u32());
      case 0xca: case 0xcb: throw new DecodeError("floats are not allowed");
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: return this.u64();
      case 0xd0: return this.i8();
      case 0xd1: return this.i16();
      case 0xd2: return this.i32();
      case 0xd3: return this.i64();
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16(), depth);
      case 0xdd: return this.array(this.u32(), depth);
      case 0xde: return this.map(this.u16(), depth);
      case 0xdf: return this.map(this.u32(), depth);
      default:
        if ((t >= 0xc7 && t <= 0xc9) || (t >= 0xd4 && t <= 0xd8)) {
          throw new DecodeError("extension types are not allowed");
        }
        throw new DecodeError(`malformed msgpack: byte 0x${t.toString(16)} is not a type`);
    }
  }
}

// Python's sorted() on str compares code points; JS "<" compares UTF-16 units.
function codePointCompare(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

function check(value, depth) {
  if (depth > PAYLOAD_DEPTH_MAX) throw new DecodeError(`nesting deeper than ${PAYLOAD_DEPTH_MAX}`);
  let items;
  if (value instanceof MsgMap) {
    for (const [k] of value.entries) {
      if (typeof k !== "string") throw new DecodeError("map key is not a str");
    }
    for (let i = 1; i < value.entries.length; i++) {
      const order = codePointCompare(value.entries[i - 1][0], value.entries[i][0]);
      if (order > 0) throw new DecodeError("non-canonical encoding (map keys not in ascending order)");
      if (order === 0) throw new DecodeError("non-canonical encoding (a map key repeated)");
    }
    items = value.entries.map(([, v]) => v);
  } else if (Array.isArray(value)) {
    items = value;
  } else {
    return;
  }
  if (depth === PAYLOAD_DEPTH_MAX && items.length) {
    throw new DecodeError(`nesting deeper than ${PAYLOAD_DEPTH_MAX}`);
  }
  for (const v of items) check(v, depth + 1);
}

class Writer {
  constructor() {
    this.parts = [];
    this.n = 0;
  }
  push(bytes) { this.parts.push(bytes); this.n += bytes.length; }
  byte(x) { this.push(Uint8Array.of(x)); }
  fixed(tag, size, setter) {
    const buf = new Uint8Array(1 + size);
    buf[0] = tag;
    setter(new DataView(buf.buffer), 1);
    this.push(buf);
  }
  int(x) {
    const big = typeof x === "bigint" ? x : BigInt(x);
    if (big >= 0n) {
      if (big <= 0x7fn) return this.byte(Number(big));
      if (big <= 0xffn) return this.fixed(0xcc, 1, (v, o) => v.setUint8(o, Number(big)));
      if (big <= 0xffffn) return this.fixed(0xcd, 2, (v, o) => v.setUint16(o, Number(big)));
      if (big <= 0xffffffffn) return this.fixed(0xce, 4, (v, o) => v.setUint32(o, Number(big)));
      if (big <= 0xffffffffffffffffn) return this.fixed(0xcf, 8, (v, o) => v.setBigUint64(o, big));
      throw new DecodeError("integer out of the 64-bit range");
    }
    if (big >= -32n) return this.byte(Number(big) & 0xff);
    if (big >= -0x80n) return this.fixed(0xd0, 1, (v, o) => v.setInt8(o, Number(big)));
    if (big >= -0x8000n) return this.fixed(0xd1, 2, (v, o) => v.setInt16(o, Number(big)));
    if (big >= -0x80000000n) return this.fixed(0xd2, 4, (v, o) => v.setInt32(o, Number(big)));
    if (big >= -0x8000000000000000n) return this.fixed(0xd3, 8, (v, o) => v.setBigInt64(o, big));
    throw new DecodeError("integer out of the 64-bit range");
  }
  len(n, fix, fixMax, t8, t16, t32) {
    if (fix !== null && n <= fixMax) return this.byte(fix | n);
    if (t8 !== null && n <= 0xff) return this.fixed(t8, 1, (v, o) => v.setUint8(o, n));
    if (n <= 0xffff) return this.fixed(t16, 2, (v, o) => v.setUint16(o, n));
    return this.fixed(t32, 4, (v, o) => v.setUint32(o, n));
  }
  value(x) {
    if (x === null) return this.byte(0xc0);
    if (x === false) return this.byte(0xc2);
    if (x === true) return this.byte(0xc3);
    if (typeof x === "number" || typeof x === "bigint") {
      if (typeof x === "number" && !Number.isInteger(x)) throw new DecodeError("floats are not allowed");
      return this.int(x);
    }
    if (typeof x === "string") {
      const b = utf8enc.encode(x);
      this.len(b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      return this.push(b);
    }
    if (x instanceof Uint8Array) {
      this.len(x.length, null, 0, 0xc4, 0xc5, 0xc6);
      return this.push(x);
    }
    if (Array.isArray(x)) {
      this.len(x.length, 0x90, 15, null, 0xdc, 0xdd);
      for (const v of x) this.value(v);
      return undefined;
    }
    if (x instanceof MsgMap) {
      this.len(x.entries.length, 0x80, 15, null, 0xde, 0xdf);
      for (const [k, v] of x.entries) {
        this.value(k);
        this.value(v);
      }
      return undefined;
    }
    throw new DecodeError(`no canonical encoding for ${typeof x}`);
  }
  bytes() {
    const out = new Uint8Array(this.n);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export function encode(value) {
  const w = new Writer();
  w.value(value);
  return w.bytes();
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Exactly one canonical value from `bytes`, or a DecodeError (codec.decode's rules). */
export function decode(bytes, maxBytes) {
  if (bytes.length > maxBytes) throw new DecodeError(`${bytes.length} bytes is over the limit of ${maxBytes}`);
  if (bytes.length === 0) throw new DecodeError("empty input");
  const r = new Reader(bytes);
  const value = r.value(0);
  if (r.i !== bytes.length) throw new DecodeError(`${bytes.length - r.i} trailing bytes after the value`);
  check(value, 0);
  if (!equalBytes(encode(value), bytes)) {
    throw new DecodeError("non-canonical encoding (re-encoding gives different bytes)");
  }
  return value;
}
