// DOM building without markup: every string from the chain goes in as a text node
// (textContent), never through innerHTML, so ids and payload fields chosen by other
// organisations cannot become markup or script.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "href" && typeof value === "string" && !/^(#|\/|blob:|data:application\/(json|octet-stream)|data:text\/csv)/.test(value)) {
      // Only in-page, same-origin or generated links: never a javascript: URL from data.
      node.setAttribute("href", "#");
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

/** An HTML element: h("a", {href: "#/x", class: "c"}, "text", child, ...). */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  return append(node, children);
}

/** An SVG element, same calling convention. */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  return append(node, children);
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function short(hex, n = 12) {
  return typeof hex === "string" && hex.length > n + 1 ? `${hex.slice(0, n)}…` : String(hex ?? "—");
}

export function enc(part) {
  return encodeURIComponent(String(part));
}

export function resultBadge(result) {
  const cls = result === "accepted" ? "ok" : result === "no_grant" ? "bad" : "warn";
  return h("span", { class: `badge ${cls}` }, result);
}
