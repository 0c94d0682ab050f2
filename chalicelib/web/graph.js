// Drawing an account's neighbourhood as SVG: a small force layout written by hand (repulsion
// between all nodes, springs along edges, a pull to the centre), deterministic start positions,
// positions kept across refreshes so the picture does not jump while the page polls.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgElement(name, attrs, parent) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  if (parent) parent.appendChild(el);
  return el;
}

function layoutGraph(nodes, edges, width, height, previous) {
  const pos = new Map();
  const n = nodes.length;
  nodes.forEach((node, i) => {
    const old = previous && previous.get(node.id);
    if (old) { pos.set(node.id, { x: old.x, y: old.y }); return; }
    if (node.center) { pos.set(node.id, { x: width / 2, y: height / 2 }); return; }
    const ring = node.type === "Account" ? 0.36 : 0.22;  // accounts outside, identifiers inside
    const angle = (2 * Math.PI * i) / Math.max(n, 1);
    pos.set(node.id, { x: width / 2 + Math.cos(angle) * width * ring, y: height / 2 + Math.sin(angle) * height * ring });
  });
  const links = edges.filter((e) => pos.has(e.source) && pos.has(e.target));
  const ideal = Math.max(60, Math.min(140, Math.sqrt((width * height) / Math.max(n, 1)) * 0.9));
  const iterations = previous && previous.size ? 60 : 300;
  for (let step = 0; step < iterations; step++) {
    const cool = 1 - step / iterations;
    const force = new Map(nodes.map((node) => [node.id, { x: 0, y: 0 }]));
    for (let i = 0; i < n; i++) {
      const a = pos.get(nodes[i].id);
      for (let j = i + 1; j < n; j++) {
        const b = pos.get(nodes[j].id);
        let dx = a.x - b.x, dy = a.y - b.y;
        let d2 = dx * dx + dy * dy;
        if (d2 < 0.01) { dx = (i - j) * 0.1; dy = 0.1; d2 = dx * dx + dy * dy; }
        const push = (ideal * ideal) / d2;
        const fa = force.get(nodes[i].id), fb = force.get(nodes[j].id);
        fa.x += dx * push * 0.05; fa.y += dy * push * 0.05;
        fb.x -= dx * push * 0.05; fb.y -= dy * push * 0.05;
      }
    }
    const seen = new Set();
    for (const e of links) {
      const key = e.source < e.target ? e.source + "|" + e.target : e.target + "|" + e.source;
      if (seen.has(key)) continue;  // parallel edges pull once
      seen.add(key);
      const a = pos.get(e.source), b = pos.get(e.target);
      const dx = b.x - a.x, dy = b.y - a.y;
      const d = Math.sqrt(dx * dx + dy * dy) || 1;
      const pull = (d - ideal) / d * 0.08;
      const fa = force.get(e.source), fb = force.get(e.target);
      fa.x += dx * pull; fa.y += dy * pull; fb.x -= dx * pull; fb.y -= dy * pull;
    }
    for (const node of nodes) {
      const p = pos.get(node.id), f = force.get(node.id);
      f.x += (width / 2 - p.x) * 0.01; f.y += (height / 2 - p.y) * 0.01;
      const len = Math.sqrt(f.x * f.x + f.y * f.y) || 1;
      const limit = 12 * cool + 0.5;
      p.x += (f.x / len) * Math.min(len, limit);
      p.y += (f.y / len) * Math.min(len, limit);
      p.x = Math.max(30, Math.min(width - 30, p.x));
      p.y = Math.max(24, Math.min(height - 24, p.y));
    }
  }
  return pos;
}

function drawGraph(svg, graph, previous, onAccount) {
  const width = svg.clientWidth || 900, height = svg.clientHeight || 560;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const pos = layoutGraph(graph.nodes, graph.edges, width, height, previous);
  const edgeLayer = svgElement("g", { class: "edges" }, svg);
  const pairs = new Map();  // bend parallel edges apart
  for (const e of drawnEdges(graph.edges)) {
    const a = pos.get(e.source), b = pos.get(e.target);
    if (!a || !b) continue;
    const key = e.source + "|" + e.target;
    const nth = pairs.get(key) || 0;
    pairs.set(key, nth + 1);
    const cls = "edge" + (e.hit ? " hit " + e.mode : "");
    const attrs = { class: cls, "data-source": e.source, "data-target": e.target, "data-label": e.label || "",
                    fill: "none" };
    if (e.hit) { attrs["data-hit"] = "true"; attrs["data-rules"] = e.rules.join(","); }
    let path;
    if (nth === 0 && !e.hit) {
      path = `M${a.x},${a.y} L${b.x},${b.y}`;
    } else {
      const mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2, dx = b.x - a.x, dy = b.y - a.y;
      const d = Math.sqrt(dx * dx + dy * dy) || 1, bend = 14 * (nth + 1) * (nth % 2 ? -1 : 1);
      path = `M${a.x},${a.y} Q${mx - (dy / d) * bend},${my + (dx / d) * bend} ${b.x},${b.y}`;
    }
    attrs.d = path;
    const el = svgElement("path", attrs, edgeLayer);
    const title = svgElement("title", {}, el);
    title.textContent = e.hit ? `${e.labels.join(", ")} (${e.rules.join(", ")}): ${e.count} hit(s), last ${e.last_ts}`
      : e.label;
  }
  const nodeLayer = svgElement("g", { class: "nodes" }, svg);
  for (const node of graph.nodes) {
    const p = pos.get(node.id);
    const isAccount = node.type === "Account";
    const cls = ["node", node.type, isAccount ? "" : "identifier", node.center ? "center" : "",
                 node.hits ? "flagged" : ""].filter(Boolean).join(" ");
    const g = svgElement("g", { class: cls, transform: `translate(${p.x},${p.y})`, "data-node-id": node.id,
                                "data-type": node.type, "data-key": node.key }, nodeLayer);
    const r = isAccount ? (node.center ? 13 : 9 + Math.min(6, Math.log2(1 + (node.hits || 0)))) : 6;
    svgElement("circle", { r }, g);
    const leftSide = p.x > width - 170;  // labels of nodes near the right edge go to their left
    const label = svgElement("text", { x: leftSide ? -(r + 4) : r + 4, y: 4, "text-anchor": leftSide ? "end" : "start" }, g);
    label.textContent = isAccount ? node.key : `${node.type} ${shorten(node.key)}`;
    const title = svgElement("title", {}, g);
    title.textContent = isAccount ? `${node.key}: ${node.hits || 0} hit(s), ${node.hops} hop(s) away`
      : `${node.type} ${node.key}`;
    if (isAccount && onAccount) g.addEventListener("click", () => onAccount(node.key));
  }
  return pos;
}

// One drawn hit edge per (source, target): the rules and hit counts of the API's edges between them.
// Shadow-mode styling only when every rule on it is in shadow mode.
function drawnEdges(edges) {
  const out = [];
  const merged = new Map();
  for (const e of edges) {
    if (!e.hit) { out.push(e); continue; }
    const key = e.source + "|" + e.target;
    let m = merged.get(key);
    if (!m) {
      m = { source: e.source, target: e.target, hit: true, rules: [], labels: [], count: 0, last_ts: e.last_ts,
            mode: "shadow" };
      merged.set(key, m);
      out.push(m);
    }
    if (!m.rules.includes(e.rule_id)) m.rules.push(e.rule_id);
    if (!m.labels.includes(e.label)) m.labels.push(e.label);
    m.count += e.count;
    if (e.last_ts > m.last_ts) m.last_ts = e.last_ts;
    if (e.mode !== "shadow") m.mode = "enforce";
  }
  return out;
}

function shorten(text) {
  return text.length > 22 ? text.slice(0, 20) + "…" : text;
}

window.FraudGraph = { drawGraph, drawnEdges, layoutGraph };
