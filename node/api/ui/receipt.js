// Receipt verification in the browser: the checks of chain/receipt.py verify_receipt,
// with nothing but the receipt and the genesis, on Web Crypto (SHA-256, Ed25519).
//
// verifyReceipt(receiptText, genesisText) -> {valid, checks: [{name, ok, detail}], tx_id,
// height, signers, quorum}. `valid` is true exactly when `grantchain verify-receipt`
// says valid; each check that could run has its own verdict, a check that depends on a
// part that failed to parse is listed with ok === null ("not checked").
//
// Signatures: Web Crypto's Ed25519 (BoringSSL in Chromium). The node and the CLI use
// OpenSSL's verification rule (docs/architecture.md §3); tests/node/api/
// test_explorer_ui.py holds the two to the same verdict on all 2,272 reference vectors.

import { decode, DecodeError, encode, equalBytes, MsgMap } from "./msgpack.js";

const RECEIPT_VERSION = 1;
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

export function hexToBytes(text, what) {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new CheckError(`${what} is not hex`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// base64.b64decode(validate=True): the standard alphabet, padded, nothing else.
function base64ToBytes(text, what) {
  if (typeof text !== "string" || text.length % 4 !== 0 ||
      !/^[A-Za-z0-9+/]*(={0,2})$/.test(text) || /=[^=]/.test(text)) {
    throw new CheckError(`malformed receipt: ${what} is not base64`);
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

function headerFrom(bytes) {
  let f;
  try {
    f = decode(bytes, HEADER_BYTES_MAX);
  } catch (e) {
    if (e instanceof DecodeError) throw new CheckError(`receipt header: header encoding: ${e.message}`);
    throw e;
  }
  const fail = (m) => { throw new CheckError(`receipt header: ${m}`); };
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
  const keys = new Map();
  for (const v of doc.validators) {
    if (!v || typeof v.node_id !== "string" || !v.node_id) bad("validator node_id");
    if (keys.has(v.node_id)) bad("validators must have unique node ids");
    const pk = hexToBytes(v.public_key, "validator public key");
    if (pk.length !== 32) bad("validator public keys are 32 bytes");
    keys.set(v.node_id, pk);
  }
  const n = keys.size;
  const quorum = doc.consensus === "pbft" ? 2 * Math.floor((n - 1) / 3) + 1 : Math.floor(n / 2) + 1;
  return { chainId: doc.chain_id, keys, quorum, validators: n };
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
  if (doc.version !== RECEIPT_VERSION) throw new CheckError(`unknown receipt version ${JSON.stringify(doc.version)}`);
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
  const out = { valid: false, checks, tx_id: null, height: null, result: null, result_name: null, signers: [], quorum: null };
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
  const headerHash = await sha256(r.headerBytes);
  const message = concat(HEADER_DOMAIN, headerHash);
  const seen = new Set();
  const signers = [];
  for (const s of r.certificate) {
    if (!genesis.keys.has(s.nodeId) || seen.has(s.nodeId)) continue;
    seen.add(s.nodeId);
    if (await ed25519Verify(genesis.keys.get(s.nodeId), message, s.signature)) signers.push(s.nodeId);
  }
  signers.sort();
  out.signers = signers;
  out.quorum = genesis.quorum;
  const certOk = signers.length >= genesis.quorum;
  checks.push({
    name: "certificate",
    ok: certOk,
    detail: certOk
      ? `signed by ${signers.join(", ")} (${signers.length} of ${genesis.validators}, quorum ${genesis.quorum})`
      : `certificate has ${signers.length} valid validator signatures, ${genesis.quorum} needed`,
  });
  out.valid = checks.every((c) => c.ok === true);
  return out;
}
