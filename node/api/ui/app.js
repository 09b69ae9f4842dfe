// The audit explorer: a hash-routed page over the node's JSON API. Every list is read a
// page at a time (cursor pagination); every value from the chain is rendered as text.

import { collect, eventStream, get, signIn } from "./api.js";
import { clear, enc, fmtTime, h, resultBadge, short } from "./dom.js";
import { buildGraph, drawGraph, drawSeries } from "./lineage.js";
import { verifyReceipt } from "./receipt.js";

const main = document.getElementById("main");
const PAGE = 25;
const DAY_MS = 24 * 3600 * 1000;
const REPORT_EVENTS_MAX = 10000;

// -- small pieces -----------------------------------------------------------------------
const link = (href, text) => h("a", { href }, text);
const txLink = (id) => link(`#/tx/${enc(id)}`, short(id, 16));
const blockLink = (height) => link(`#/block/${enc(height)}`, String(height));
const datasetLink = (id) => link(`#/dataset/${enc(id)}`, id);
const orgLink = (id) => link(`#/grants?grantee=${enc(id)}`, id);
const modelLink = (name, version) => link(`#/model/${enc(name)}/${enc(version)}`, `${name} v${version}`);

function table(headers, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, "nothing here"))));
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

function card(title, value, sub, attrs = {}) {
  return h("div", { class: "card", ...attrs }, h("div", { class: "card-title" }, title), h("div", { class: "card-value" }, value), sub ? h("div", { class: "card-sub" }, sub) : null);
}

function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

function errorBox(err) {
  return h("div", { class: "error", role: "alert" }, String(err && err.message ? err.message : err));
}

function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

function ready(name) {
  document.body.dataset.view = name;
  document.body.dataset.ready = String(Date.now());
}

/** A paginated list: fetch(cursor) -> {items, next_cursor}; render(items) -> node. */
function pager(fetchPage, render, attrs = {}) {
  const box = h("div", { class: "pager", ...attrs });
  const stack = [];
  let current = null;
  const load = async (cursor) => {
    const body = h("div", { class: "loading" }, "loading…");
    clear(box).append(body);
    try {
      const page = await fetchPage(cursor);
      const prev = h("button", { type: "button", disabled: stack.length === 0, onclick: () => load(stack.pop()) }, "← previous");
      const next = h("button", { type: "button", disabled: !page.next_cursor, onclick: () => { stack.push(current); load(page.next_cursor); } }, "next →");
      current = cursor;
      clear(box).append(render(page.items, page),
        h("div", { class: "pager-nav" }, prev, h("span", { class: "page-no" }, `page ${stack.length + 1}`), next));
    } catch (err) {
      clear(box).append(errorBox(err));
    }
    box.dataset.loaded = String(Date.now());
  };
  box.reload = () => load(current);
  load(null);
  return box;
}

function eventRows(items) {
  return items.map((e) => h("tr", { class: e.result === "no_grant" ? "violation" : "" },
    h("td", {}, fmtTime(e.timestamp_ms)),
    h("td", {}, orgLink(e.actor.org_id), h("div", { class: "sub" }, e.actor.identity)),
    h("td", {}, e.kind.replace(/^audit\./, "")),
    h("td", {}, e.purpose ?? "—"),
    h("td", {}, e.uses.length ? e.uses.map((u) => h("div", {}, datasetLink(u.dataset_id), u.version ? ` v${u.version}` : "")) : "—"),
    h("td", {}, resultBadge(e.result)),
    h("td", {}, txLink(e.tx.tx_id))));
}
const EVENT_HEADERS = ["block time", "actor", "event", "purpose", "datasets", "result", "tx"];

// -- the live commit stream -------------------------------------------------------------
const listeners = new Set();
let stream = null;
let lastHeight = null;
function openStream() {
  if (stream) return;
  stream = eventStream("/v1/stream/blocks");
  stream.addEventListener("block", (ev) => {
    let block;
    try {
      block = JSON.parse(ev.data);
    } catch {
      return;
    }
    lastHeight = block.height;
    document.getElementById("live").textContent = `live · height ${block.height}`;
    for (const fn of listeners) fn(block);
  });
  stream.addEventListener("open", () => {
    const live = document.getElementById("live");
    live.classList.add("on");
    if (lastHeight === null) live.textContent = "live";
  });
  stream.addEventListener("error", () => { document.getElementById("live").classList.remove("on"); });
}
function onBlock(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
let detach = () => {};

// -- views -------------------------------------------------------------------------------
async function dashboard() {
  const d = await get("/v1/explore/dashboard");
  const st = d.status;
  const head = st.height;
  const series = [];
  const blocks = d.recent_blocks;
  if (blocks.length > 1) {
    const t0 = blocks[0].timestamp_ms;
    const t1 = blocks[blocks.length - 1].timestamp_ms;
    const buckets = Math.max(2, Math.min(40, Math.ceil((t1 - t0) / 1000)));
    const width = Math.max(1, (t1 - t0) / buckets);
    const counts = new Array(buckets + 1).fill(0);
    for (const b of blocks.slice(1)) counts[Math.min(buckets, Math.floor((b.timestamp_ms - t0) / width))] += b.tx_count;
    counts.forEach((c, i) => series.push({ t: t0 + i * width, v: c / (width / 1000) }));
  }
  const rows = d.validators.map((v) => {
    const lag = v.last_signed_height === null ? null : head - v.last_signed_height;
    const health = v.status && v.status !== "active" ? ["removed", "warn"]
      : lag === null ? ["not in recent certificates", "warn"] : lag <= 2 ? ["signing", "ok"] : [`${lag} blocks behind`, "warn"];
    return h("tr", {},
      h("td", {}, v.node_id, v.node_id === st.leader ? h("span", { class: "badge info" }, "leader") : null),
      h("td", {}, v.org_id ?? "—"),
      h("td", {}, v.last_signed_height ?? "—"),
      h("td", {}, h("span", { class: `badge ${health[1]}` }, health[0])));
  });
  const total = blocks.slice(1).reduce((n, b) => n + b.tx_count, 0);
  const span = blocks.length > 1 ? (blocks[blocks.length - 1].timestamp_ms - blocks[0].timestamp_ms) / 1000 : 0;
  const view = h("div", {},
    h("h1", {}, "Dashboard"),
    h("div", { class: "cards" },
      card("height", String(head), `log size ${st.log_size}`, { "data-testid": "height" }),
      card("leader", st.leader ?? "none", `${st.consensus} term ${st.term}`),
      card("this node", st.node_id, `${st.role} · mempool ${st.mempool_txs}`),
      card("tx/s", span > 0 ? (total / span).toFixed(1) : "—", `over the last ${blocks.length} blocks`),
      card("violations, last 24 h", `${d.violations_last_day}${d.violations_count_capped ? "+" : ""}`,
        h("a", { href: "#/violations" }, "see them"), { class: `card${d.violations_last_day ? " alarm" : ""}`, "data-testid": "violations-24h" })),
    section("Throughput", drawSeries(series)),
    section("Validators", h("p", { class: "hint" }, "Health is read from the block certificates: a validator that signs the recent headers is up and in step. A certificate keeps the first quorum of signatures, so under Raft one healthy validator can be missing from all of them."),
      table(["node", "organisation", "last signed height", "health"], rows)),
    section("Chain", kv([["chain id", st.chain_id], ["head hash", st.head_hash], ["kernels", st.kernels]])));
  let pending = false;
  detach = onBlock(() => {
    if (pending) return;
    pending = true;
    setTimeout(async () => {
      pending = false;
      if (document.body.dataset.view === "dashboard") await route();
    }, 1000);
  });
  return view;
}

function blocks() {
  return h("div", {}, h("h1", {}, "Blocks"),
    pager((cursor) => get("/v1/explore/blocks", { cursor, limit: PAGE }), (items) =>
      table(["height", "time", "proposer", "term", "txs", "signed by"], items.map((b) => h("tr", {},
        h("td", {}, blockLink(b.height)), h("td", {}, fmtTime(b.timestamp_ms)), h("td", {}, b.proposer),
        h("td", {}, b.round), h("td", {}, b.tx_count), h("td", {}, b.signers.join(", ") || "—"))))));
}

async function block(height) {
  const first = await get(`/v1/explore/blocks/${enc(height)}/txs`, { limit: PAGE });
  const hd = first.header;
  let initial = first;
  const txPage = (cursor) => {
    if (cursor === null && initial) {
      const page = initial;
      initial = null; // the first page came with the header
      return Promise.resolve(page);
    }
    return get(`/v1/explore/blocks/${enc(height)}/txs`, { cursor, limit: PAGE });
  };
  return h("div", {}, h("h1", {}, `Block ${first.height}`),
    h("div", { class: "nav-row" }, first.height > 1 ? link(`#/block/${first.height - 1}`, "← previous block") : null, " ", link(`#/block/${first.height + 1}`, "next block →")),
    kv([["hash", first.hash], ["previous", hd.prev_hash], ["time", fmtTime(hd.timestamp_ms)], ["proposer", hd.proposer],
      ["term", hd.round], ["txs", hd.tx_count], ["log size", hd.log_size], ["tx root", hd.tx_root],
      ["results root", hd.results_root], ["state root", hd.state_root],
      ["certificate", first.certificate.join(", ") || "not yet certified"]]),
    section("Transactions", pager(txPage, (items) =>
      table(["#", "tx", "kind", "result"], items.map((t) => h("tr", {},
        h("td", {}, t.position), h("td", {}, txLink(t.tx_id)), h("td", {}, t.kind ?? "—"), h("td", {}, resultBadge(t.result))))))));
}

function payloadRows(payload) {
  return Object.entries(payload || {}).map(([key, value]) => h("tr", {}, h("th", {}, key),
    h("td", {}, value !== null && typeof value === "object" ? json(value) : String(value))));
}

async function tx(id) {
  const t = await get(`/v1/explore/txs/${enc(id)}`);
  if (t.status !== "committed") return h("div", {}, h("h1", {}, "Transaction"), h("p", {}, `${t.tx_id} is ${t.status}`));
  const ident = t.sender_identity;
  return h("div", {}, h("h1", {}, "Transaction ", h("span", { class: "mono" }, short(t.tx_id, 16))),
    kv([["tx id", h("span", { class: "mono" }, t.tx_id)], ["kind", t.kind], ["result", resultBadge(t.result)],
      ["block", blockLink(t.height)], ["position", `${t.position} (log leaf ${t.log_index})`],
      ["block time", fmtTime(t.block_timestamp_ms)], ["signed at", fmtTime(t.timestamp_ms)],
      ["sender", ident ? h("span", {}, orgLink(ident.org_id), ` / ${ident.name} (${ident.role})`) : h("span", { class: "mono" }, t.sender)],
      ["nonce", t.nonce]]),
    t.result === "no_grant" ? h("div", { class: "error", role: "note" },
      "Recorded as a violation: no grant in force at the block's time allowed this use",
      t.payload && t.payload.purpose ? ` (purpose: ${t.payload.purpose})` : "", ". The attempt is kept as audit evidence.") : null,
    h("p", {}, link(`#/verify?tx=${enc(t.tx_id)}`, "Verify this tx's receipt in the browser →")),
    section("Payload", table(["field", "value"], payloadRows(t.payload), { class: "payload" })));
}

function datasets() {
  return h("div", {}, h("h1", {}, "Datasets"),
    pager((cursor) => get("/v1/explore/datasets", { cursor, limit: PAGE }), (items) =>
      table(["dataset", "owner", "sensitivity", "licence", "versions", "registered"], items.map((d) => h("tr", {},
        h("td", {}, datasetLink(d.dataset_id), d.title ? h("div", { class: "sub" }, d.title) : null),
        h("td", {}, orgLink(d.owner_org)), h("td", {}, h("span", { class: `badge sens-${d.sensitivity}` }, d.sensitivity)),
        h("td", {}, d.licence ?? "—"), h("td", {}, d.version_count ?? "—"), h("td", {}, fmtTime(d.registered_ms)))))));
}

function grantRows(items, { showDataset = true, showGrantee = true } = {}) {
  return items.map((g) => h("tr", { class: g.revoked ? "revoked" : "" },
    showDataset ? h("td", {}, datasetLink(g.dataset_id), g.version ? ` v${g.version}` : "") : null,
    showGrantee ? h("td", {}, orgLink(g.grantee_org), g.grantee_identity ? ` / ${g.grantee_identity}` : "") : null,
    h("td", {}, g.purposes.join(", ")),
    h("td", {}, `${fmtTime(g.valid_from_ms)} → ${fmtTime(g.valid_until_ms)}`),
    h("td", {}, g.revoked ? h("span", { class: "badge bad" }, "revoked") : g.in_force ? h("span", { class: "badge ok" }, "in force") : h("span", { class: "badge warn" }, "not in force"),
      g.revoked ? h("div", { class: "sub" }, `${fmtTime(g.revoked_ms)}${g.revoke_reason ? `: ${g.revoke_reason}` : ""}`) : null),
    h("td", {}, txLink(g.issued.tx_id))));
}
const grantHeaders = (showDataset, showGrantee) => [showDataset ? "dataset" : null, showGrantee ? "grantee" : null, "purposes", "valid", "status", "issued in"].filter(Boolean);

async function dataset(id) {
  const d = await get(`/v1/explore/datasets/${enc(id)}`);
  return h("div", {}, h("h1", {}, "Dataset ", h("span", { class: "mono" }, d.dataset_id)),
    kv([["title", d.title], ["owner", orgLink(d.owner_org)], ["sensitivity", h("span", { class: `badge sens-${d.sensitivity}` }, d.sensitivity)],
      ["location", d.location], ["licence", d.licence], ["consent basis", d.consent_basis],
      ["original purpose", d.original_purpose], ["registered", h("span", {}, fmtTime(d.registered_ms), " in ", txLink(d.registered.tx_id))]]),
    section(`Versions (${d.version_count})`, pager((cursor) => get(`/v1/explore/datasets/${enc(id)}/versions`, { cursor, limit: PAGE }), (items) =>
      table(["version", "content hash", "parent", "location", "added"], items.map((v) => h("tr", {},
        h("td", {}, v.version), h("td", { class: "mono" }, short(v.content_hash, 20)), h("td", {}, v.parent_version ?? "—"),
        h("td", {}, v.location ?? "—"), h("td", {}, fmtTime(v.added_ms), " ", txLink(v.added.tx_id))))))),
    section("Grants", pager((cursor) => get("/v1/explore/grants", { dataset: id, cursor, limit: PAGE }), (items) =>
      table(grantHeaders(false, true), grantRows(items, { showDataset: false })))),
    section("History", pager((cursor) => get(`/v1/explore/datasets/${enc(id)}/history`, { cursor, limit: PAGE }), (items) =>
      table(["time", "what", "result", "tx"], items.map((e) => h("tr", { class: e.result === "no_grant" ? "violation" : "" },
        h("td", {}, fmtTime(e.timestamp_ms)), h("td", {}, e.kind), h("td", {}, resultBadge(e.result)), h("td", {}, txLink(e.tx.tx_id))))))));
}

async function grants(params) {
  const c = await get("/v1/explore/consortium");
  const by = params.get("grantee") ? "grantee" : "dataset";
  const value = params.get(by) || "";
  const input = h("input", { name: "value", value, placeholder: "dataset id, e.g. org1/xray", list: "orgs" });
  const select = h("select", { name: "by" }, h("option", { value: "dataset", selected: by === "dataset" }, "by dataset"), h("option", { value: "grantee", selected: by === "grantee" }, "by grantee organisation"));
  const form = h("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/grants?${select.value}=${enc(input.value.trim())}`; } },
    select, input, h("datalist", { id: "orgs" }, c.organisations.map((o) => h("option", { value: o.org_id }))), h("button", { type: "submit" }, "show"));
  const out = h("div", {}, h("h1", {}, "Grants"), form,
    h("p", { class: "hint" }, "Organisations: ", c.organisations.map((o, i) => [i ? ", " : "", orgLink(o.org_id)])));
  if (value) {
    out.append(section(`Grants ${by === "grantee" ? "to" : "of"} ${value}`,
      pager((cursor) => get("/v1/explore/grants", { [by]: value, cursor, limit: PAGE }), (items) =>
        table(grantHeaders(by === "grantee", by === "dataset"), grantRows(items, { showDataset: by === "grantee", showGrantee: by === "dataset" })))));
  }
  return out;
}

function rangeForm(params, action, defaults) {
  const toLocal = (ms) => new Date(ms).toISOString().slice(0, 16);
  const from = h("input", { type: "datetime-local", name: "from", value: toLocal(Number(params.get("from_ms") || defaults.from)) });
  const until = h("input", { type: "datetime-local", name: "until", value: toLocal(Number(params.get("until_ms") || defaults.until)) });
  const form = h("form", { class: "inline", onsubmit: (ev) => {
    ev.preventDefault();
    const a = Date.parse(`${from.value}Z`);
    const b = Date.parse(`${until.value}Z`);
    location.hash = `${action}?from_ms=${a}&until_ms=${b}`;
  } }, h("label", {}, "from (UTC) ", from), h("label", {}, "until (UTC) ", until), h("button", { type: "submit" }, "show"));
  return form;
}

function violations(params) {
  const now = Date.now();
  const fromMs = Number(params.get("from_ms") || now - DAY_MS);
  const untilMs = params.get("until_ms") ? Number(params.get("until_ms")) : null;
  const live = h("tbody", { "data-testid": "live-violations" });
  const liveTable = h("table", { class: "live" }, h("thead", {}, h("tr", {}, EVENT_HEADERS.map((x) => h("th", {}, x)))), live);
  const liveBox = h("div", { class: "live-box", hidden: true }, h("h2", {}, "Just committed"), liveTable);
  const list = pager((cursor) => get("/v1/explore/violations", { from_ms: fromMs, until_ms: untilMs ?? "", cursor, limit: PAGE }),
    (items) => table(EVENT_HEADERS, eventRows(items), { "data-testid": "violations" }));
  detach = onBlock(async (b) => {
    for (const t of b.txs) {
      if (t.result !== "no_grant") continue;
      try {
        const tx = await get(`/v1/explore/txs/${enc(t.tx_id)}`);
        const p = tx.payload || {};
        const used = (p.datasets || p.inputs || []).map((u) => (u && typeof u === "object" ? u.dataset_id : u)).filter(Boolean);
        if (p.dataset_id) used.push(p.dataset_id);
        liveBox.hidden = false;
        live.prepend(h("tr", { class: "violation fresh" },
          h("td", {}, fmtTime(tx.block_timestamp_ms)),
          h("td", {}, tx.sender_identity ? orgLink(tx.sender_identity.org_id) : short(tx.sender), tx.sender_identity ? h("div", { class: "sub" }, tx.sender_identity.name) : null),
          h("td", {}, String(tx.kind).replace(/^audit\./, "")), h("td", {}, p.purpose ?? "—"),
          h("td", {}, used.length ? used.map((u) => h("div", {}, datasetLink(String(u)))) : "—"),
          h("td", {}, resultBadge(tx.result)), h("td", {}, txLink(tx.tx_id))));
      } catch (err) {
        live.prepend(h("tr", {}, h("td", { colspan: 7 }, errorBox(err))));
      }
    }
  });
  return h("div", {}, h("h1", {}, "Violations"),
    h("p", { class: "hint" }, "Audit events committed with result no_grant: a use of data that no grant in force allowed. New ones appear here as they are committed."),
    rangeForm(params, "#/violations", { from: now - DAY_MS, until: now + 3600 * 1000 }),
    liveBox, section("In the range (chain order)", list));
}

function models() {
  return h("div", {}, h("h1", {}, "Models"),
    pager((cursor) => get("/v1/explore/models", { cursor, limit: PAGE }), (items) =>
      table(["model", "organisation", "training runs", "registered"], items.map((m) => h("tr", {},
        h("td", {}, modelLink(m.model_name, m.model_version)), h("td", {}, orgLink(m.org_id)),
        h("td", {}, m.training_runs.join(", ") || "—"), h("td", {}, fmtTime(m.registered_ms)))))));
}

async function model(name, version) {
  const lin = await get(`/v1/explore/models/${enc(name)}/${enc(version)}/lineage`);
  const graph = buildGraph(lin);
  const legend = h("div", { class: "legend" }, ["dataset", "derivation", "run", "model", "use"].map((t) => h("span", { class: `key ${t}` }, t)), h("span", { class: "key bad" }, "no grant"));
  return h("div", {}, h("h1", {}, "Model ", h("span", { class: "mono" }, `${lin.model.model_name} v${lin.model.model_version}`)),
    h("p", {}, lin.clean ? h("span", { class: "badge ok" }, "clean: every use of data had a grant") : h("span", { class: "badge bad" }, `${lin.violations.length} use(s) without a grant in its lineage`)),
    section("Lineage", legend, h("div", { class: "graph", "data-testid": "lineage" }, drawGraph(graph))),
    section("Datasets", table(["dataset", "owner", "sensitivity"], lin.datasets.map((d) => h("tr", {}, h("td", {}, datasetLink(d.dataset_id)), h("td", {}, orgLink(d.owner_org)), h("td", {}, d.sensitivity))))),
    section("Training runs", table(["run", "type", "status", "inputs"], lin.runs.map((r) => h("tr", { class: r.violation ? "violation" : "" },
      h("td", {}, r.run_id), h("td", {}, r.type), h("td", {}, r.status),
      h("td", {}, r.inputs.map((i) => h("div", {}, datasetLink(i.dataset_id), ` (${i.context ?? "input"}) `, i.allowed ? h("span", { class: "badge ok" }, "granted") : h("span", { class: "badge bad" }, "no grant")))))))),
    section("Grants relied on", table(grantHeaders(true, true), grantRows(lin.grants.map((g) => ({ ...g, in_force: g.revoked === null && g.valid_until_ms > Date.now() && g.valid_from_ms <= Date.now() }))))),
    section("Since registration", pager((cursor) => get(`/v1/explore/models/${enc(name)}/${enc(version)}/uses`, { cursor, limit: PAGE }), (items) =>
      table(["time", "what", "result", "tx"], items.map((u) => h("tr", { class: u.result === "no_grant" ? "violation" : "" },
        h("td", {}, fmtTime(u.timestamp_ms)), h("td", {}, u.kind), h("td", {}, resultBadge(u.result)), h("td", {}, txLink(u.tx.tx_id))))))));
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  // Quote always; a leading = + - @ would be a formula in a spreadsheet: prefix it.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return `"${safe.replace(/"/g, '""')}"`;
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function report(params) {
  const now = Date.now();
  const fromMs = Number(params.get("from_ms") || now - DAY_MS);
  const untilMs = Number(params.get("until_ms") || now + 3600 * 1000);
  const r = await get("/v1/audit/report", { from_ms: fromMs, until_ms: untilMs });
  const counts = (title, obj, show = (k) => k) => section(title, table(["", "events"], Object.entries(obj).map(([k, v]) => h("tr", {}, h("td", {}, show(k)), h("td", { class: "num" }, v)))));
  const status = h("span", { class: "hint", "data-testid": "download-status" });
  const events = async () => {
    status.textContent = "reading events…";
    const got = await collect("/v1/explore/events", { from_ms: fromMs, until_ms: untilMs }, REPORT_EVENTS_MAX);
    status.textContent = got.truncated ? `first ${got.items.length} events (more exist: narrow the range)` : `${got.items.length} events`;
    return got;
  };
  const name = `grantchain-audit-${new Date(fromMs).toISOString().slice(0, 10)}-${new Date(untilMs).toISOString().slice(0, 10)}`;
  const asJson = async () => {
    const got = await events();
    download(`${name}.json`, "application/json", JSON.stringify({ report: r, events: got.items, events_truncated: got.truncated }, null, 2));
  };
  const asCsv = async () => {
    const got = await events();
    const header = ["block_time_utc", "timestamp_ms", "height", "index", "tx_id", "kind", "result", "org_id", "identity", "on_behalf_of", "purpose", "datasets", "run_id"];
    const lines = [header.map(csvCell).join(",")];
    for (const e of got.items) {
      lines.push([fmtTime(e.timestamp_ms), e.timestamp_ms, e.tx.height, e.tx.index, e.tx.tx_id, e.kind, e.result, e.actor.org_id, e.actor.identity, e.on_behalf_of, e.purpose, e.uses.map((u) => u.dataset_id).join(" "), e.run_id].map(csvCell).join(","));
    }
    download(`${name}.csv`, "text/csv", `${lines.join("\r\n")}\r\n`);
  };
  const crossRows = Object.entries(r.by_org_result).map(([org, c]) => h("tr", {}, h("td", {}, orgLink(org)), h("td", { class: "num" }, c.accepted ?? 0), h("td", { class: "num bad-text" }, c.no_grant ?? 0), h("td", { class: "num" }, Object.entries(c).filter(([k]) => k !== "accepted" && k !== "no_grant").reduce((n, [, v]) => n + v, 0))));
  // The counts cover the whole range (the node keeps counters); only the violations are listed in part.
  const shown = r.violations.slice(0, 200);
  const more = (r.by_result.no_grant ?? 0) > shown.length;
  return h("div", {}, h("h1", {}, "Audit report"),
    rangeForm(params, "#/report", { from: fromMs, until: untilMs }),
    h("div", { class: "cards" }, card("events", String(r.total), `${fmtTime(r.from_ms)} → ${fmtTime(Math.min(r.until_ms, 8.64e15))}`), card("violations", String(r.by_result.no_grant ?? 0), "no_grant", { class: `card${r.by_result.no_grant ? " alarm" : ""}` })),
    h("div", { class: "actions" }, h("button", { type: "button", "data-testid": "download-json", onclick: asJson }, "Download JSON"), h("button", { type: "button", "data-testid": "download-csv", onclick: asCsv }, "Download CSV"), status),
    section("By organisation and result", table(["organisation", "accepted", "no_grant", "other"], crossRows)),
    h("div", { class: "grid2" }, counts("By dataset", r.by_dataset, datasetLink), counts("By purpose", r.by_purpose), counts("By kind", r.by_kind), counts("By result", r.by_result)),
    section("Violations in the range", table(EVENT_HEADERS, eventRows(shown)),
      more ? h("p", { "data-testid": "report-more-violations" }, `The first ${shown.length} of ${r.by_result.no_grant}: `,
        link(`#/violations?from_ms=${enc(fromMs)}&until_ms=${enc(untilMs)}`, "all of them, page by page →")) : null));
}

function dropZone(textarea, label) {
  const file = h("input", { type: "file", accept: ".json,application/json", "aria-label": `${label} file` });
  const read = async (f) => { textarea.value = await f.text(); };
  file.addEventListener("change", () => file.files[0] && read(file.files[0]));
  const zone = h("div", { class: "drop" }, h("div", { class: "drop-title" }, label), textarea, h("div", { class: "sub" }, "paste, drop a file here, or ", file));
  zone.addEventListener("dragover", (ev) => { ev.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    if (ev.dataTransfer.files[0]) read(ev.dataTransfer.files[0]);
  });
  return zone;
}

async function verify(params) {
  const receipt = h("textarea", { name: "receipt", rows: 10, spellcheck: "false", placeholder: "grantchain tx get ID --json > receipt.json" });
  const genesis = h("textarea", { name: "genesis", rows: 10, spellcheck: "false", placeholder: "the consortium's genesis.json, from a copy you trust" });
  const result = h("div", { class: "verdict", "data-testid": "verdict", "aria-live": "polite" });
  const txId = params.get("tx");
  if (txId) receipt.value = JSON.stringify(await get(`/v1/txs/${enc(txId)}`), null, 2);
  const run = async () => {
    clear(result).append(h("div", { class: "loading" }, "checking…"));
    try {
      const out = await verifyReceipt(receipt.value, genesis.value);
      clear(result).append(
        h("div", { class: `overall ${out.valid ? "ok" : "bad"}`, "data-valid": String(out.valid) }, out.valid ? "VALID" : "INVALID",
          h("span", { class: "sub" }, out.tx_id ? ` tx ${out.tx_id}` : "", out.height !== null ? ` at height ${out.height}` : "",
            out.valid ? `, result ${out.result_name} (code ${out.result})` : "")),
        h("ul", { class: "checks" }, out.checks.map((c) => h("li", { class: c.ok === true ? "ok" : c.ok === false ? "bad" : "skip" },
          h("span", { class: "mark" }, c.ok === true ? "✓" : c.ok === false ? "✗" : "–"), h("strong", {}, c.name), " ", h("span", { class: "sub" }, c.detail)))));
    } catch (err) {
      clear(result).append(errorBox(err));
    }
    result.dataset.done = String(Date.now());
  };
  return h("div", {}, h("h1", {}, "Verify a receipt"),
    h("p", { class: "hint" }, "Checked here, in this browser, against the genesis alone: the tx's signature, its inclusion in the block (tx_root), its result (results_root), its place in the log since genesis (log_root) and the block's certificate (a quorum of the validators in force at its height). Where governance changed the validators (a version 2 receipt), each change of its validator-set history is checked in turn from the genesis set, with the certificate of the set before it. Nothing is sent to the node."),
    h("div", { class: "grid2" }, dropZone(receipt, "Receipt"), dropZone(genesis, "Genesis")),
    h("div", { class: "actions" }, h("button", { type: "button", class: "primary", "data-testid": "verify", onclick: run }, "Verify")),
    result);
}

async function search(q) {
  const r = await get("/v1/explore/search", { q });
  const target = (m) => ({
    tx: `#/tx/${enc(m.id)}`, block: `#/block/${enc(m.id)}`, dataset: `#/dataset/${enc(m.id)}`,
    model: `#/model/${enc(m.id)}/${enc(m.version)}`, org: `#/grants?grantee=${enc(m.id)}`,
  })[m.type];
  if (r.matches.length === 1) {
    location.replace(target(r.matches[0]));
    return h("div", {}, "…");
  }
  return h("div", {}, h("h1", {}, "Search"), h("p", {}, `“${r.q}”`),
    r.matches.length ? h("ul", { class: "matches" }, r.matches.map((m) => h("li", {}, h("span", { class: "badge info" }, m.type), " ", link(target(m), m.version ? `${m.id} v${m.version}` : String(m.id)))))
      : h("p", { class: "hint" }, "Nothing on the chain has exactly this id: try a full tx id (64 hex), a block height, a dataset id (org/name), a model name or an organisation id."));
}

// -- routing -----------------------------------------------------------------------------
const ROUTES = {
  dashboard: () => dashboard(),
  blocks: () => blocks(),
  block: (a) => block(a[0]),
  tx: (a) => tx(a[0]),
  datasets: () => datasets(),
  dataset: (a) => dataset(a.join("/")),
  grants: (a, p) => grants(p),
  violations: (a, p) => violations(p),
  models: () => models(),
  model: (a) => model(a.slice(0, -1).join("/"), a[a.length - 1]),
  report: (a, p) => report(p),
  verify: (a, p) => verify(p),
  search: (a) => search(a.join("/")),
};

async function route() {
  detach();
  detach = () => {};
  const hash = location.hash.replace(/^#\/?/, "") || "dashboard";
  const [path, query] = hash.split("?", 2);
  const [name, ...rest] = path.split("/");
  const args = rest.map((x) => decodeURIComponent(x));
  const params = new URLSearchParams(query || "");
  const view = ROUTES[name] ? name : "dashboard";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view || (view === "block" && a.dataset.view === "blocks") || (view === "model" && a.dataset.view === "models") || (view === "dataset" && a.dataset.view === "datasets"));
  try {
    const node = await ROUTES[view](args, params);
    clear(main).append(node);
  } catch (err) {
    clear(main).append(h("h1", {}, "Not available"), errorBox(err));
  }
  ready(view);
}

document.getElementById("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = ev.target.elements.q.value.trim();
  if (q) location.hash = `#/search/${enc(q)}`;
});
window.addEventListener("hashchange", route);
// Reading as a member: a key file dropped in signs every read (node/api/auth.py).
document.getElementById("keyfile").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  const who = document.getElementById("reader");
  if (!file) return;
  try {
    const publicHex = await signIn(await file.text());
    who.textContent = `reading as ${publicHex.slice(0, 12)}…`;
    who.title = publicHex;
  } catch (err) {
    who.textContent = `key not loaded: ${err.message}`;
    return;
  } finally {
    ev.target.value = "";
  }
  if (stream) stream.close();
  stream = null;
  openStream();
  route();
});
openStream();
route();

// For tests and the console: the same checks the Verify page runs.
window.grantchainVerifyReceipt = verifyReceipt;
