// Model lineage as a graph: datasets -> derivations -> datasets -> training runs ->
// models -> deployments, inference batches, evaluations. Built from
// GET /v1/models/{name}/{version}/lineage and drawn as SVG (layered left to right by
// longest path), every label a text node.

import { s } from "./dom.js";

// What was done with a model, by kind: [one, many].
const USE_NAMES = {
  "audit.deployment": ["deployment", "deployments"],
  "audit.inference_batch": ["inference batch", "inference batches"],
  "audit.evaluation": ["evaluation", "evaluations"],
  "audit.oversight_intervention": ["oversight intervention", "oversight interventions"],
  "audit.incident_report": ["incident report", "incident reports"],
};
const NOT_A_USE = new Set(["audit.model_registration"]); // the model node itself

export function buildGraph(lin) {
  const nodes = new Map();
  const edges = [];
  const add = (id, type, label, sub, bad = false) => {
    const old = nodes.get(id);
    if (old) {
      old.bad = old.bad || bad;
      return old;
    }
    const node = { id, type, label, sub, bad };
    nodes.set(id, node);
    return node;
  };
  const edge = (from, to, bad = false) => edges.push({ from, to, bad });
  for (const d of lin.datasets || []) {
    add(`d:${d.dataset_id}`, "dataset", d.dataset_id, `${d.owner_org} · ${d.sensitivity}`);
  }
  for (const x of lin.derivations || []) {
    const id = `x:${x.tx.tx_id}`;
    add(id, "derivation", x.activity, `derivation · ${x.result}`, x.result === "no_grant");
    for (const i of x.inputs) {
      add(`d:${i.dataset_id}`, "dataset", i.dataset_id, "dataset");
      edge(`d:${i.dataset_id}`, id, !i.allowed);
    }
    add(`d:${x.output_dataset_id}`, "dataset", x.output_dataset_id, "dataset");
    edge(id, `d:${x.output_dataset_id}`);
  }
  for (const r of lin.runs || []) {
    const id = `r:${r.run_id}`;
    add(id, "run", r.run_id, `${r.type} run · ${r.status}`, r.violation);
    for (const i of r.inputs) {
      add(`d:${i.dataset_id}`, "dataset", i.dataset_id, "dataset");
      edge(`d:${i.dataset_id}`, id, !i.allowed);
    }
    if (r.base_model) edge(`m:${r.base_model.model_name}@${r.base_model.model_version}`, id);
  }
  for (const m of lin.models || []) {
    const id = `m:${m.model_name}@${m.model_version}`;
    add(id, "model", `${m.model_name} v${m.model_version}`, `model · ${m.org_id}`);
    for (const run of m.training_runs) if (nodes.has(`r:${run}`)) edge(`r:${run}`, id);
    for (const p of m.parent_models) edge(`m:${p.model_name}@${p.model_version}`, id);
  }
  const root = `m:${lin.model.model_name}@${lin.model.model_version}`;
  const groups = new Map();
  for (const u of lin.uses || []) {
    if (NOT_A_USE.has(u.kind)) continue;
    const g = groups.get(u.kind) || { count: 0, bad: 0 };
    g.count += 1;
    if (u.result === "no_grant") g.bad += 1;
    groups.set(u.kind, g);
  }
  for (const [kind, g] of groups) {
    const [one, many] = USE_NAMES[kind] || [kind, kind];
    const more = lin.uses_truncated ? "+" : ""; // only the first uses were listed
    const sub = g.bad ? `${g.count}${more} recorded · ${g.bad}${more} without a grant` : `${g.count}${more} recorded`;
    add(`u:${kind}`, "use", g.count > 1 ? many : one, sub, g.bad > 0);
    edge(root, `u:${kind}`, g.bad > 0);
  }
  // Edges to nodes the answer did not include (e.g. a base model) are dropped.
  return { nodes, edges: edges.filter((e) => nodes.has(e.from) && nodes.has(e.to)), root };
}

function layers(graph) {
  const incoming = new Map([...graph.nodes.keys()].map((id) => [id, []]));
  for (const e of graph.edges) incoming.get(e.to).push(e.from);
  const depth = new Map();
  const visiting = new Set();
  const walk = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0; // a cycle cannot come from the chain; do not loop
    visiting.add(id);
    const d = Math.max(-1, ...incoming.get(id).map(walk)) + 1;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  for (const id of graph.nodes.keys()) walk(id);
  return depth;
}

const BOX_W = 250;
const BOX_H = 48;
const GAP_X = 70;
const GAP_Y = 18;

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

export function drawGraph(graph) {
  const depth = layers(graph);
  const columns = [];
  for (const [id, d] of depth) (columns[d] ||= []).push(graph.nodes.get(id));
  const pos = new Map();
  let height = 0;
  columns.forEach((col, x) => {
    col.sort((a, b) => a.type.localeCompare(b.type) || a.label.localeCompare(b.label));
    col.forEach((node, y) => {
      pos.set(node.id, { x: 20 + x * (BOX_W + GAP_X), y: 20 + y * (BOX_H + GAP_Y) });
    });
    height = Math.max(height, 40 + col.length * (BOX_H + GAP_Y));
  });
  const width = 40 + columns.length * (BOX_W + GAP_X) - GAP_X;
  const svg = s("svg", {
    class: "lineage",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": "model lineage graph",
  });
  const defs = s("defs", {},
    s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" })));
  svg.append(defs);
  for (const e of graph.edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    const x1 = a.x + BOX_W;
    const y1 = a.y + BOX_H / 2;
    const x2 = b.x;
    const y2 = b.y + BOX_H / 2;
    const mx = (x1 + x2) / 2;
    svg.append(s("path", {
      class: `edge${e.bad ? " bad" : ""}`,
      d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 2} ${y2}`,
      "marker-end": "url(#arrow)",
    }));
  }
  for (const node of graph.nodes.values()) {
    const p = pos.get(node.id);
    const g = s("g", {
      class: `node ${node.type}${node.bad ? " bad" : ""}${node.id === graph.root ? " root" : ""}`,
      transform: `translate(${p.x} ${p.y})`,
      "data-id": node.id,
    },
    s("title", {}, `${node.label}\n${node.sub}`),
    s("rect", { width: BOX_W, height: BOX_H, rx: 6 }),
    s("text", { x: 10, y: 20, class: "label" }, clip(node.label, 31)),
    s("text", { x: 10, y: 38, class: "sub" }, clip(node.sub, 36)));
    svg.append(g);
  }
  return svg;
}

/** A small line chart of (t, value) points: tx/s over the recent blocks. */
export function drawSeries(points, { width = 640, height = 160, unit = "tx/s" } = {}) {
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": `${unit} over time` });
  if (points.length < 2) {
    svg.append(s("text", { x: 10, y: height / 2, class: "sub" }, "not enough blocks yet"));
    return svg;
  }
  const pad = 34;
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const vmax = Math.max(1, ...points.map((p) => p.v));
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad - 8);
  const y = (v) => height - 20 - (v / vmax) * (height - 34);
  svg.append(s("line", { x1: pad, y1: height - 20, x2: width - 8, y2: height - 20, class: "axis" }));
  svg.append(s("line", { x1: pad, y1: 10, x2: pad, y2: height - 20, class: "axis" }));
  svg.append(s("text", { x: 2, y: 16, class: "sub" }, vmax.toFixed(vmax < 10 ? 1 : 0)));
  svg.append(s("text", { x: 2, y: height - 22, class: "sub" }, "0"));
  svg.append(s("text", { x: pad, y: height - 4, class: "sub" }, new Date(t0).toISOString().slice(11, 19)));
  svg.append(s("text", { x: width - 70, y: height - 4, class: "sub" }, new Date(t1).toISOString().slice(11, 19)));
  const d = points.map((p, i) => `${i ? "L" : "M"} ${x(p.t).toFixed(1)} ${y(p.v).toFixed(1)}`).join(" ");
  svg.append(s("path", { d, class: "series" }));
  return svg;
}
