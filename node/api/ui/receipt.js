// Receipt verification in the browser: the checks of chain/receipt.py verify_receipt,
// with nothing but the receipt and the genesis, on Web Crypto (SHA-256, Ed25519).
//
// verifyReceipt(receiptText, genesisText) -> {valid, checks: [{name, ok, detail}], tx_id,
// height, signers, quorum, validators, validator_set_changes}. `valid` is true exactly when `grantchain verify-receipt`
// says valid; each check that could run has its own verdict, a check that depends on a
// part that failed to parse is listed with ok === null ("not checked").
//
// Receipt version 2 (chain/validator_sets.py, docs/architecture.md §9 "Validator sets")
// carries `validator_sets`, the certified history of governance changes of the validator
// set: it is walked from the genesis set, each step's certificate checked with the set in
// force before it over HEADER_DOMAIN || header hash || digest(new set), then the
// receipt's certificate with the set in force at its height, over its header hash and,
// once a change is at or below its height, the digest of the set after it.
//
// Signatures: Web Crypto's Ed25519 (BoringSSL in Chromium). The node and the CLI use
// OpenSSL's verification rule (docs/architecture.md §3); tests/node/api/
// test_explorer_ui.py holds the two to the same verdict on all 2,272 reference vectors.

import { decode, DecodeError, encode, equalBytes, MsgMap } from "./msgpack.js";

const RECEIPT_VERSION = 1;
const RECEIPT_VERSION_WITH_SETS = 2;
const VALIDATORS_MAX = 1024;
const ORG_ID_CHARS_MAX = 128;
const TX_VERSION = 1;
const HEADER_VERSION = 1;
const HASH_BYTES = 32;
const TX_BYTES_MAX = 64 * 1024;
const HEADER_BYTES_MAX = 4096;
const CHAIN_ID_CHARS_MAX = 64;
const KIND_CHARS_MAX = 48;
const NODE_ID_CHARS_MAX = 64;
const BLOCK_TXS_MAX = 10000;
const PROOF_HASHES_MAX = 128;
const KIND_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
const TX_DOMAIN = new TextEncoder().encode("grantchain/tx/v1\u0000");
const HEADER_DOMAIN = new TextEncoder().encode("grantchain/header-sig/v1\u0000");
const SET_DOMAIN = new TextEncoder().encode("grantchain/validator-set/v1\u0000");
const TWO63 = 2n ** 63n;

// acl/results.py: the result codes by name.
const RESULT_NAMES = ["accepted", "no_grant", "malformed", "unauthorized", "unknown_sender",
  "replayed", "unknown_kind", "wrong_chain", "unsupported_version", "sender_revoked",
  "key_rotated", "org_inactive", "not_found", "already_exists", "invalid_state",
  "duplicate_vote", "stale", "invalid_window"];

export function resultName(code) {
  return RESULT_NAMES[Number(code)] ?? `unknown_${code}`;
}

class CheckError extends Error {}

// bytes.fromhex: pairs of hex digits, ASCII whitespace allowed between pairs only.
export function hexToBytes(text, what) {
  if (typeof text !== "string" || !/^[ \t\n\r\v\f]*([0-9a-fA-F]{2}[ \t\n\r\v\f]*)*$/.test(text)) {
    throw new CheckError(`${what} is not hex`);
  }
  const digits = text.replace(/[ \t\n\r\v\f]/g, "");
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// base64.b64decode(validate=True): the standard alphabet, padded, nothing else.
function base64ToBytes(text, what, malformed = "malformed receipt") {
  if (typeof text !== "string" || text.length % 4 !== 0 ||
      !/^[A-Za-z0-9+/]*(={0,2})$/.test(text) || /=[^=]/.test(text)) {
    throw new CheckError(`${malformed}: ${what} is not base64`);
  }
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

function isInt(v) {
  return (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint";
}

function nonNegative(v, name) {
  if (!isInt(v) || v < 0) throw new CheckError(`receipt ${name} must be a non-negative integer`);
  return BigInt(v);
}

function headerFrom(bytes, what = "receipt header") {
  let f;
  try {
    f = decode(bytes, HEADER_BYTES_MAX);
  } catch (e) {
    if (e instanceof DecodeError) throw new CheckError(`${what}: header encoding: ${e.message}`);
    throw e;
  }
  const fail = (m) => { throw new CheckError(`${what}: ${m}`); };
  if (!Array.isArray(f) || f.length !== 13) fail("a header is an array of 13 fields");
  const [version, chainId, height, prevHash, txRoot, txCount, logRoot, logSize, resultsRoot,
    stateRoot, timestampMs, proposer, round] = f;
  if (version !== HEADER_VERSION) fail(`unknown header version ${String(version)}`);
  for (const [name, v] of [["height", height], ["tx_count", txCount], ["log_size", logSize],
    ["timestamp_ms", timestampMs], ["round", round]]) {
    if (!isInt(v) || BigInt(v) < 0n || BigInt(v) >= TWO63) fail(`header ${name} must be a non-negative integer`);
  }
  for (const [name, v] of [["prev_hash", prevHash], ["tx_root", txRoot], ["log_root", logRoot],
    ["results_root", resultsRoot], ["state_root", stateRoot]]) {
    if (!(v instanceof Uint8Array) || v.length !== HASH_BYTES) fail(`header ${name} must be ${HASH_BYTES} bytes`);
  }
  if (typeof chainId !== "string" || !chainId) fail("header chain_id must be a non-empty str");
  if (typeof proposer !== "string" || [...proposer].length > NODE_ID_CHARS_MAX) fail("header proposer must be a node id str");
  if (BigInt(txCount) > BigInt(BLOCK_TXS_MAX)) fail(`tx_count ${txCount} is over ${BLOCK_TXS_MAX}`);
  return {
    chainId, height: BigInt(height), txRoot, txCount: BigInt(txCount), logRoot,
    logSize: BigInt(logSize), resultsRoot, timestampMs: BigInt(timestampMs), proposer,
  };
}

function txFrom(bytes) {
  if (bytes.length > TX_BYTES_MAX) throw new CheckError(`tx: tx is ${bytes.length} bytes, over the limit of ${TX_BYTES_MAX}`);
  let f;
  try {
    f = decode(bytes, TX_BYTES_MAX);
  } catch (e) {
    if (e instanceof DecodeError) throw new CheckError(`tx: tx encoding: ${e.message}`);
    throw e;
  }
  const fail = (m) => { throw new CheckError(`tx: ${m}`); };
  if (!Array.isArray(f) || f.length !== 8) fail("a tx is an array of 8 fields");
  const [version, chainId, kind, sender, nonce, timestampMs, payload, signature] = f;
  if (version !== TX_VERSION) fail(`unknown tx version ${String(version)}`);
  if (typeof chainId !== "string" || chainId.length === 0 || [...chainId].length > CHAIN_ID_CHARS_MAX) {
    fail(`chain_id must be a str of 1..${CHAIN_ID_CHARS_MAX} chars`);
  }
  if (typeof kind !== "string" || [...kind].length > KIND_CHARS_MAX || !KIND_PATTERN.test(kind)) {
    fail("kind is malformed");
  }
  if (!(sender instanceof Uint8Array) || sender.length !== 32) fail("sender must be a 32-byte Ed25519 public key");
  for (const [name, v] of [["nonce", nonce], ["timestamp_ms", timestampMs]]) {
    if (!isInt(v) || BigInt(v) < 0n || BigInt(v) >= TWO63) fail(`${name} must be an integer in [0, 2^63-1]`);
  }
  if (!(payload instanceof MsgMap)) fail("payload must be a map");
  if (!(signature instanceof Uint8Array) || signature.length !== 64) fail("signature must be 64 bytes");
  const signed = concat(TX_DOMAIN, encode(f.slice(0, 7)));
  return { chainId, kind, sender, signature, signed };
}

export async function ed25519Verify(publicKey, message, signature) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false; // a key Web Crypto refuses to import verifies nothing
  }
}

// RFC 9162 §2.1.3.2, as chain/merkle.py verify_inclusion.
async function verifyInclusion(leaf, index, size, proof, root) {
  if (index >= size) throw new CheckError(`leaf index ${index} is not below tree size ${size}`);
  if (proof.length > PROOF_HASHES_MAX) throw new CheckError(`proof must be a list of at most ${PROOF_HASHES_MAX} hashes`);
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new CheckError("inclusion proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new CheckError("inclusion proof is too short");
  if (!equalBytes(r, root)) throw new CheckError("inclusion proof does not lead to the root");
}

function parseGenesis(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CheckError(`genesis is not JSON: ${e.message}`);
  }
  const bad = (m) => { throw new CheckError(`genesis is malformed: ${m}`); };
  if (!doc || typeof doc !== "object") bad("not an object");
  if (typeof doc.chain_id !== "string" || !doc.chain_id || [...doc.chain_id].length > CHAIN_ID_CHARS_MAX) bad("chain_id");
  if (doc.consensus !== "raft" && doc.consensus !== "pbft") bad(`consensus must be raft or pbft, got ${String(doc.consensus)}`);
  if (!Array.isArray(doc.validators) || doc.validators.length === 0) bad("validators must be non-empty");
  const validators = [];
  for (const v of doc.validators) {
    if (!v || typeof v.node_id !== "string" || !v.node_id) bad("validator node_id");
    if (validators.some((w) => w.nodeId === v.node_id)) bad("validators must have unique node ids");
    if (typeof v.org_id !== "string" || !v.org_id) bad("validator org_id");
    const pk = hexToBytes(v.public_key, "validator public key");
    if (pk.length !== 32) bad("validator public keys are 32 bytes");
    validators.push({ nodeId: v.node_id, orgId: v.org_id, publicKey: pk });
  }
  const set = validatorSet(0n, validators);
  return { chainId: doc.chain_id, consensus: doc.consensus, set, quorum: quorumOf(doc.consensus, set.validators.length), validators: set.validators.length };
}

// -- validator sets (chain/validator_sets.py) ---------------------------------------------

// Python orders str by code point; JS's default sort orders by UTF-16 unit, which differs
// past U+FFFF.
function compareCodePoints(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

const sortedIds = (ids) => [...ids].sort(compareCodePoints);

// ValidatorSet.of: the validators sorted by node id, from `sinceHeight` on.
export function validatorSet(sinceHeight, validators) {
  return { sinceHeight, validators: [...validators].sort((a, b) => compareCodePoints(a.nodeId, b.nodeId)) };
}

// quorum_of: a majority (Raft), or 2f+1 of n = 3f+1 (PBFT).
export function quorumOf(consensus, n) {
  return consensus === "pbft" ? 2 * Math.floor((n - 1) / 3) + 1 : Math.floor(n / 2) + 1;
}

const nodeIds = (set) => set.validators.map((v) => v.nodeId);

function sameMembers(a, b) {
  return a.validators.length === b.validators.length && a.validators.every((v, i) => {
    const w = b.validators[i];
    return v.nodeId === w.nodeId && v.orgId === w.orgId && equalBytes(v.publicKey, w.publicKey);
  });
}

// ValidatorSet.digest: SHA-256(SET_DOMAIN || canonical [since_height, [[node_id, org_id, key]...]]).
export async function setDigest(set) {
  const value = [set.sinceHeight, set.validators.map((v) => [v.nodeId, v.orgId, v.publicKey])];
  return sha256(concat(SET_DOMAIN, encode(value)));
}

// signing_bytes: what the set in force at a block signs, given `after`, the set after it.
async function signingBytes(headerHash, after) {
  if (after.sinceHeight === 0n) return concat(HEADER_DOMAIN, headerHash);
  return concat(HEADER_DOMAIN, headerHash, await setDigest(after));
}

// valid_signers_for: distinct members of `set` whose signature over `message` verifies.
async function validSigners(set, message, certificate) {
  const keys = new Map(set.validators.map((v) => [v.nodeId, v.publicKey]));
  const seen = new Set();
  const signers = [];
  for (const s of certificate) {
    if (!keys.has(s.nodeId) || seen.has(s.nodeId)) continue;
    seen.add(s.nodeId);
    if (await ed25519Verify(keys.get(s.nodeId), message, s.signature)) signers.push(s.nodeId);
  }
  return sortedIds(signers);
}

// check_certificate: the signers, and the refusal naming the set and any outsider.
async function checkCertificate(where, set, consensus, message, certificate) {
  const signers = await validSigners(set, message, certificate);
  const need = quorumOf(consensus, set.validators.length);
  if (signers.length >= need) return { signers, need, error: null };
  const members = new Set(nodeIds(set));
  const outsiders = sortedIds(new Set(certificate.map((s) => s.nodeId).filter((id) => !members.has(id))));
  const extra = outsiders.length ? `; signed by ${outsiders.join(", ")}, not in that set` : "";
  return {
    signers,
    need,
    error: `${where}: certificate has ${signers.length} valid signatures of the validators in ` +
      `force (${nodeIds(set).join(", ")}), ${need} needed${extra}`,
  };
}

// ValidatorHistory.after: the set after applying block `height` (bisect over the heights).
function setAfter(sets, height) {
  let i = -1;
  while (i + 1 < sets.length && sets[i + 1].sinceHeight <= height) i++;
  return sets.at(i); // -1 is the latest, as Python's index -1
}

function pyStr(value, maxChars, what) {
  if (typeof value !== "string" || value.length === 0 || [...value].length > maxChars) {
    throw new CheckError(`${what}: expected a str of 1..${maxChars} chars, got ${JSON.stringify(value)}`);
  }
  return value;
}

function pyHex(value, bytes, what) {
  const raw = hexToBytes(value, what);
  if (raw.length !== bytes) throw new CheckError(`${what} is ${bytes} bytes`);
  return raw;
}

// SetChange.from_json: one step of the history, or the refusal naming what is malformed.
function parseStep(doc) {
  const malformed = "malformed validator-set change";
  try {
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new CheckError(`${malformed}: not an object`);
    for (const key of ["header", "height", "validators", "certificate"]) {
      if (!(key in doc)) throw new CheckError(`${malformed}: KeyError('${key}')`);
    }
    const headerBytes = base64ToBytes(doc.header, "header", malformed);
    const header = headerFrom(headerBytes, "validator-set change header");
    const height = pyNumber(doc.height);
    if (!isInt(height) || BigInt(height) !== header.height) {
      throw new CheckError(`validator-set change says height ${pyRepr(doc.height)}, its header is at ${header.height}`);
    }
    const members = doc.validators;
    if (!Array.isArray(members) || members.length === 0 || members.length > VALIDATORS_MAX) {
      throw new CheckError(`validator-set change at height ${header.height}: validators must be a list of 1..${VALIDATORS_MAX}`);
    }
    const validators = members.map((v) => {
      if (!v || typeof v !== "object" || Array.isArray(v)) throw new CheckError(`${malformed}: a validator is not an object`);
      return {
        nodeId: pyStr(v.node_id, NODE_ID_CHARS_MAX, malformed),
        orgId: pyStr(v.org_id, ORG_ID_CHARS_MAX, malformed),
        publicKey: pyHex(v.public_key, 32, `${malformed}: a public key`),
      };
    });
    if (new Set(validators.map((v) => v.nodeId)).size !== validators.length) {
      throw new CheckError(`validator-set change at height ${header.height}: node ids repeat`);
    }
    if (!Array.isArray(doc.certificate)) throw new CheckError(`${malformed}: certificate is not a list`);
    const certificate = doc.certificate.map((s) => {
      if (!s || typeof s !== "object" || Array.isArray(s)) throw new CheckError(`${malformed}: a certificate entry is not an object`);
      return {
        nodeId: pyStr(s.node_id, NODE_ID_CHARS_MAX, malformed),
        signature: pyHex(s.signature, 64, `${malformed}: a signature`),
      };
    });
    return { header, headerBytes, certificate, set: validatorSet(header.height, validators) };
  } catch (e) {
    if (e instanceof CheckError && !e.message.startsWith("validator-set change") && !e.message.startsWith(malformed)) {
      throw new CheckError(`${malformed}: ${e.message}`);
    }
    throw e;
  }
}

// Python's repr of a JSON scalar, for messages that quote one as chain/receipt.py does.
function pyRepr(v) {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "string") {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    const body = v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
    return q + (q === "'" ? body.replace(/'/g, "\\'") : body) + q;
  }
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

// A JSON value as Python's == sees it next to an int: a bool is 0 or 1.
function pyNumber(v) {
  return v === true ? 1 : v === false ? 0 : v;
}

// Python's truthiness, for `not doc.get("validator_sets", [])`.
function pyFalsy(v) {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === "object" && Object.keys(v).length === 0;
}

// The receipt itself, a `tx get` answer ({"receipt": ...}) or a submit answer
// ({"results": [{"receipt": ...}]}), as the CLI accepts.
function unwrap(doc) {
  if (doc && typeof doc === "object" && !Array.isArray(doc)) {
    if ("receipt" in doc) return doc.receipt;
    if (Array.isArray(doc.results) && doc.results.length) return doc.results[0]?.receipt;
  }
  return doc;
}

function parseReceipt(text) {
  let doc;
  try {
    doc = unwrap(JSON.parse(text));
  } catch (e) {
    throw new CheckError(`receipt is not JSON: ${e.message}`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new CheckError("malformed receipt: not an object");
  for (const key of ["version", "tx", "header", "position", "log_index", "result", "tx_proof",
    "result_proof", "log_proof", "certificate"]) {
    if (!(key in doc)) throw new CheckError(`malformed receipt: KeyError('${key}')`);
  }
  // Python compares the version with ==, so true is version 1 there; so it is here.
  const version = pyNumber(doc.version);
  if (version !== RECEIPT_VERSION && version !== RECEIPT_VERSION_WITH_SETS) {
    throw new CheckError(`unknown receipt version ${pyRepr(doc.version)}`);
  }
  // A version 1 receipt's validator_sets, if any, are ignored, as chain/receipt.py does.
  const sets = version === RECEIPT_VERSION_WITH_SETS ? (doc.validator_sets ?? []) : [];
  if (version === RECEIPT_VERSION_WITH_SETS && pyFalsy(sets)) {
    throw new CheckError("a version 2 receipt carries validator_sets");
  }
  if (!Array.isArray(sets)) throw new CheckError("receipt validator_sets must be a list");
  const tx = base64ToBytes(doc.tx, "tx");
  const headerBytes = base64ToBytes(doc.header, "header");
  const header = headerFrom(headerBytes);
  const hashes = (list, what) => {
    if (!Array.isArray(list)) throw new CheckError(`malformed receipt: ${what} is not a list`);
    return list.map((p) => hexToBytes(p, `a ${what} hash`));
  };
  const receipt = {
    tx,
    headerBytes,
    header,
    position: nonNegative(doc.position, "position"),
    logIndex: nonNegative(doc.log_index, "log_index"),
    result: nonNegative(doc.result, "result"),
    txProof: hashes(doc.tx_proof, "tx_proof"),
    resultProof: hashes(doc.result_proof, "result_proof"),
    logProof: hashes(doc.log_proof, "log_proof"),
  };
  if (!Array.isArray(doc.certificate)) throw new CheckError("malformed receipt: certificate is not a list");
  receipt.certificate = doc.certificate.map((s) => {
    if (!s || typeof s !== "object" || !("node_id" in s) || !("signature" in s)) {
      throw new CheckError("malformed receipt: a certificate entry lacks node_id or signature");
    }
    return { nodeId: String(s.node_id), signature: hexToBytes(s.signature, "a certificate signature") };
  });
  receipt.steps = sets.map(parseStep);
  return receipt;
}

async function proofCheck(checks, name, fn) {
  try {
    await fn();
    checks.push({ name, ok: true, detail: "" });
  } catch (e) {
    if (!(e instanceof CheckError)) throw e;
    checks.push({ name, ok: false, detail: e.message });
  }
}

export async function verifyReceipt(receiptText, genesisText) {
  const checks = [];
  const out = { valid: false, checks, tx_id: null, height: null, result: null, result_name: null, signers: [], quorum: null, validators: [], validator_set_changes: 0 };
  const notChecked = (...names) => {
    for (const name of names) checks.push({ name, ok: null, detail: "not checked: an earlier part failed" });
  };
  const later = ["tx signature", "tx in block (tx_root)", "result in block (results_root)",
    "tx in log (log_root)", "log index", "certificate"];
  let genesis;
  let r;
  try {
    genesis = parseGenesis(genesisText);
    checks.push({ name: "genesis", ok: true, detail: `chain ${genesis.chainId}, ${genesis.validators} validators, quorum ${genesis.quorum}` });
  } catch (e) {
    if (!(e instanceof CheckError)) throw e;
    checks.push({ name: "genesis", ok: false, detail: e.message });
    notChecked("receipt format", "chain", ...later);
    return out;
  }
  try {
    r = parseReceipt(receiptText);
    checks.push({ name: "receipt format", ok: true, detail: `block ${r.header.height}, position ${r.position}` });
  } catch (e) {
    if (!(e instanceof CheckError)) throw e;
    checks.push({ name: "receipt format", ok: false, detail: e.message });
    notChecked("chain", ...later);
    return out;
  }
  const h = r.header;
  out.height = Number(h.height);
  out.result = Number(r.result);
  out.result_name = resultName(r.result);
  let tx = null;
  let chainOk = true;
  let chainDetail = `chain ${genesis.chainId}`;
  if (h.chainId !== genesis.chainId) {
    chainOk = false;
    chainDetail = `header is for chain ${h.chainId}, the genesis is ${genesis.chainId}`;
  } else {
    try {
      tx = txFrom(r.tx);
      if (tx.chainId !== genesis.chainId) {
        chainOk = false;
        chainDetail = `tx is for chain ${tx.chainId}`;
      }
    } catch (e) {
      if (!(e instanceof CheckError)) throw e;
      chainOk = false;
      chainDetail = e.message;
    }
  }
  checks.push({ name: "chain", ok: chainOk, detail: chainDetail });
  const txId = await leafHash(r.tx);
  out.tx_id = bytesToHex(txId);
  if (tx === null) {
    checks.push({ name: "tx signature", ok: null, detail: "not checked: the tx did not decode" });
  } else {
    const good = await ed25519Verify(tx.sender, tx.signed, tx.signature);
    checks.push({ name: "tx signature", ok: good, detail: good ? `${tx.kind}, signed by ${bytesToHex(tx.sender).slice(0, 16)}…` : "tx signature does not verify" });
  }
  await proofCheck(checks, "tx in block (tx_root)", () =>
    verifyInclusion(txId, r.position, h.txCount, r.txProof, h.txRoot));
  await proofCheck(checks, "result in block (results_root)", async () => {
    if (r.result >= 65536n) throw new CheckError(`result code ${r.result} is not in [0, 65536)`);
    const code = Uint8Array.of(Number(r.result >> 8n), Number(r.result & 0xffn));
    await verifyInclusion(await leafHash(concat(txId, code)), r.position, h.txCount, r.resultProof, h.resultsRoot);
  });
  await proofCheck(checks, "tx in log (log_root)", () =>
    verifyInclusion(txId, r.logIndex, h.logSize, r.logProof, h.logRoot));
  const indexOk = r.logIndex === h.logSize - h.txCount + r.position;
  checks.push({ name: "log index", ok: indexOk, detail: indexOk ? `leaf ${r.logIndex} of ${h.logSize}` : "log_index does not match the tx's position in its block" });
  // The validator-set history (receipt version 2), walked from the genesis set as
  // verify_history does: each step certified by the set in force before it.
  const sets = [genesis.set];
  let historyOk = true;
  let last = 0n;
  for (const [i, step] of r.steps.entries()) {
    const sh = step.header;
    const name = `validator-set change ${i + 1} of ${r.steps.length} (height ${sh.height})`;
    if (!historyOk) {
      checks.push({ name, ok: null, detail: "not checked: an earlier change failed" });
      continue;
    }
    const where = `validator-set change at height ${sh.height}`;
    let error = null;
    let detail = "";
    const before = setAfter(sets, sh.height - 1n);
    if (sh.chainId !== genesis.chainId) error = `${where}: header is for chain ${pyRepr(sh.chainId)}`;
    else if (sh.height <= last) error = `${where}: changes must be in increasing height order`;
    else if (sh.height > h.height) error = `${where}: past the height ${h.height} it is to prove`;
    else if (step.set.sinceHeight !== sh.height) error = `${where}: the set is not the one its block made`;
    else if (sameMembers(step.set, before)) error = `${where}: the set is the one already in force`;
    else {
      const message = await signingBytes(await sha256(step.headerBytes), step.set);
      const cert = await checkCertificate(where, before, genesis.consensus, message, step.certificate);
      error = cert.error;
      detail = `signed by ${cert.signers.join(", ")} (${cert.signers.length} of ${before.validators.length} in force before, ` +
        `quorum ${cert.need}); validators from height ${sh.height}: ${nodeIds(step.set).join(", ")}`;
    }
    if (error !== null) {
      historyOk = false;
      checks.push({ name, ok: false, detail: error });
      continue;
    }
    sets.push(step.set);
    last = sh.height;
    checks.push({ name, ok: true, detail });
  }
  const lastStep = r.steps.at(-1);
  if (historyOk && lastStep && lastStep.header.height === h.height) {
    const same = equalBytes(lastStep.headerBytes, r.headerBytes);
    checks.push({
      name: "validator-set change at the receipt's block",
      ok: same,
      detail: same ? `block ${h.height} made the last change`
        : `validator-set change at height ${h.height} is for another header than the receipt's`,
    });
  }
  // The receipt's certificate, by the set in force at its height (the set after h - 1),
  // over its header and the set after it.
  const inForce = setAfter(sets, h.height - 1n);
  out.quorum = quorumOf(genesis.consensus, inForce.validators.length);
  out.validators = nodeIds(inForce);
  out.validator_set_changes = r.steps.length;
  if (!historyOk) {
    checks.push({ name: "certificate", ok: null, detail: "not checked: the validator-set history failed" });
  } else {
    const message = await signingBytes(await sha256(r.headerBytes), setAfter(sets, h.height));
    const cert = await checkCertificate(`block ${h.height}`, inForce, genesis.consensus, message, r.certificate);
    out.signers = cert.signers;
    const n = inForce.validators.length;
    const changes = r.steps.length
      ? `; validators in force ${out.validators.join(", ")} after ${r.steps.length} validator-set change${r.steps.length > 1 ? "s" : ""} since genesis`
      : "";
    checks.push({
      name: "certificate",
      ok: cert.error === null,
      detail: cert.error === null
        ? `signed by ${cert.signers.join(", ")} (${cert.signers.length} of ${n}, quorum ${cert.need}${changes})`
        : cert.error,
    });
  }
  out.valid = checks.every((c) => c.ok === true);
  return out;
}
