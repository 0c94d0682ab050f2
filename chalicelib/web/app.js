// The investigator's page: hash routes (#/ overview, #/account/ID), data from the read-only API
// under api/, re-read every REFRESH_MS while the tab is visible so a running replay or Kinesis
// poll shows up live. Every value from the API is inserted as text, never as HTML.
"use strict";

const REFRESH_MS = 4000;
const RULE_COLOURS = ["#2456d6", "#d92d20", "#12b76a", "#f79009", "#7a5af8", "#0e9384", "#dd2590", "#667085",
                      "#84cc16", "#06aed4", "#f04438", "#4e5ba6", "#c11574", "#fdb022",
                      "#b54708", "#155eef"];
const BUCKETS = [86400, 3600, 600, 60, 10, 1];
const view = document.getElementById("view");
let timer = null;
let graphPositions = null;
let graphAccount = null;
let generation = 0;  // only the latest render may touch the page (a poll may still be in flight)

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value); else el.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

async function api(path) {
  const response = await fetch("api/" + path, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function accountLink(account) {
  return h("a", { href: "#/account/" + encodeURIComponent(account), class: "account-link", "data-account": account },
           account);
}

function panel(cls, title, note, ...content) {
  const id = cls.split(" ")[1] || null;
  return h("section", { class: "panel " + cls, id }, h("h2", {}, title, note ? h("small", {}, note) : null), ...content);
}

function table(columns, rows, empty) {
  if (!rows.length) return h("div", { class: "empty" }, empty || "nothing yet");
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null }, c.title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : null },
      c.cell(row))))))));
}

function tag(text, cls) { return h("span", { class: "tag " + (cls || text) }, text); }
function shortTs(ts) { return ts ? ts.replace("T", " ").replace("Z", "").replace(/(\.\d{3})\d+/, "$1") : ""; }
function fmt(value) {
  if (value === null || value === undefined) return "";
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString(undefined, { maximumFractionDigits: 2 }) : String(value);
}

function setStatus(ok, text) {
  document.getElementById("status").classList.toggle("error", !ok);
  document.getElementById("status-text").textContent = text;
}

async function showRejected() {
  const rules = await api("rules");
  const banner = document.getElementById("rejected");
  const rejected = rules.last_rejected;
  banner.hidden = !rejected;
  if (rejected) {
    banner.textContent = `Last rejected rules edit (${shortTs(rejected.at)}), version ${rejected.kept_version} ` +
      `stayed in force:\n${rejected.reason}`;
  }
  return rules;
}

// --------------------------------------------------------------------------- overview

async function rates() {
  // the coarsest bucket that still shows the data spread over several bars
  let chosen = null;
  for (const seconds of BUCKETS) {
    const answer = await api(`hit-rates?bucket_seconds=${seconds}&limit=60`);
    chosen = answer;
    if (answer.items.length >= 6 || !answer.items.length) break;
  }
  return chosen;
}

function ratesChart(data) {
  if (!data || !data.items.length) return h("div", { class: "empty" }, "no hits yet");
  const items = data.items.slice().reverse();  // oldest first, left to right
  const rules = data.rules;
  const colour = (rule) => RULE_COLOURS[rules.indexOf(rule) % RULE_COLOURS.length];
  const width = 760, height = 220, left = 44, bottom = 28, top = 10;
  const max = Math.max(...items.map((i) => i.total), 1);
  const slot = (width - left - 10) / items.length;
  const svg = FraudGraphSvg("svg", { viewBox: `0 0 ${width} ${height}`, id: "rates-chart", width: "100%",
                                     height: String(height) });
  for (let t = 0; t <= 4; t++) {
    const y = top + (height - top - bottom) * (1 - t / 4);
    FraudGraphSvg("line", { x1: left, x2: width - 10, y1: y, y2: y, stroke: "#e3e6ec" }, svg);
    FraudGraphSvg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, svg).textContent = fmt(Math.round(max * t / 4));
  }
  items.forEach((item, i) => {
    let y = height - bottom;
    for (const rule of rules) {
      const count = item.counts[rule] || 0;
      if (!count) continue;
      const barHeight = (count / max) * (height - top - bottom);
      y -= barHeight;
      const bar = FraudGraphSvg("rect", { x: left + i * slot + 1, y, width: Math.max(1, slot - 2), height: barHeight,
                                          fill: colour(rule), "data-rule": rule }, svg);
      FraudGraphSvg("title", {}, bar).textContent = `${rule}: ${count} hit(s) from ${shortTs(item.bucket_start)}`;
    }
    if (i % Math.ceil(items.length / 6) === 0) {
      FraudGraphSvg("text", { x: left + i * slot, y: height - 8 }, svg).textContent = shortTs(item.bucket_start).slice(5, 19);
    }
  });
  const legend = h("div", { class: "legend" }, rules.map((rule) =>
    h("span", {}, h("i", { style: `background:${colour(rule)}` }), rule)));
  return h("div", {}, svg, legend);
}

function FraudGraphSvg(name, attrs, parent) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  if (parent) parent.appendChild(el);
  return el;
}

async function renderOverview(mine) {
  const [rules, rateData, top, rings, hits, decided, alertPanels] = await Promise.all([
    showRejected(), rates(), api("top-accounts?limit=15"), api("rings?limit=10"), api("hits?limit=25"),
    recentDecisions(), FraudAlerts.overviewPanels()]);
  const bucket = rateData ? rateData.bucket_seconds : null;
  if (mine !== generation) return;
  view.replaceChildren(
    ...alertPanels,
    panel("w8 rates", "Hits over time per rule", bucket ? `per ${bucket >= 3600 ? bucket / 3600 + " h" : bucket >= 60 ?
      bucket / 60 + " min" : bucket + " s"}, newest right` : null, ratesChart(rateData)),
    panel("w4 top-accounts", "Top flagged accounts", "by number of hits", table([
      { title: "account", cell: (r) => accountLink(r.account_id) },
      { title: "hits", num: true, cell: (r) => fmt(r.hits) },
      { title: "rules", num: true, cell: (r) => r.rules },
      { title: "last hit", cell: (r) => shortTs(r.last_ts) }], top.items, "no flagged accounts yet")),
    panel("w6 rings", "Rings", `${rings.total} groups linked by shared identifiers`, table([
      { title: "size", num: true, cell: (r) => r.size },
      { title: "accounts", cell: (r) => [r.accounts.slice(0, 8).map((a, i) => [i ? ", " : "", accountLink(a)]),
                                         r.accounts.length > 8 ? ` +${r.accounts.length - 8}` : ""] },
      { title: "linked by", cell: (r) => r.identifiers.slice(0, 3).map((i) => `${i.label} ${i.key} (${i.accounts.length})`)
                                           .join("; ") }], rings.items, "no rings")),
    panel("w6 rules", "Rules in force", `version ${rules.version}, loaded ${shortTs(rules.loaded_at)}`, table([
      { title: "rule", cell: (r) => h("span", { title: r.description || "" }, r.id) },
      { title: "kind", cell: (r) => r.kind },
      { title: "mode", cell: (r) => tag(r.mode) },
      { title: "severity", cell: (r) => tag(r.severity) },
      { title: "window", cell: (r) => r.window_seconds ? `${r.window_seconds / 60} min` : "" }], rules.rules)),
    panel("w12 latest-hits", "Latest hits", null, hitsTable(hits.items)),
    decisionsPanel(decided));
}

function hitsTable(items, withAccount = true) {
  return table([
    { title: "time", cell: (r) => shortTs(r.ts) },
    withAccount ? { title: "account", cell: (r) => accountLink(r.account_id) } : null,
    { title: "rule", cell: (r) => r.rule_id },
    { title: "mode", cell: (r) => tag(r.mode) },
    { title: "severity", cell: (r) => tag(r.severity) },
    { title: "edge", cell: (r) => `-[${r.label}]-> ${r.to_label} ${r.to}` },
    { title: "value", num: true, cell: (r) => `${fmt(r.value)} > ${fmt(r.threshold)}` }].filter(Boolean), items, "no hits");
}

// --------------------------------------------------------------------------- account page

let hops = 1;

function hopsPicker() {
  return h("label", { class: "muted" }, " hops ", h("select", { id: "hops", onchange: (event) => {
    hops = Number(event.target.value); graphAccount = null; render(); } },
  [1, 2, 3].map((n) => h("option", { value: n, selected: n === hops ? "selected" : null }, n))));
}

async function renderAccount(account, mine, alertId) {
  const enc = encodeURIComponent(account);
  await showRejected();
  const [alertPanel, graph, activity, hits, aggregates] = await Promise.all([
    alertId ? FraudAlerts.alertPanel(alertId) : null,
    api(`accounts/${enc}/neighbourhood?hops=${hops}`).catch((e) => ({ error: e.message })),
    api(`accounts/${enc}/activity?limit=50`),
    api(`accounts/${enc}/hits?limit=50`),
    api(`accounts/${enc}/aggregates`).catch((e) => ({ error: e.message }))]);
  if (mine !== generation) return;
  const fresh = graphAccount !== account;
  const svg = fresh ? FraudGraphSvg("svg", { id: "graph" }) : document.getElementById("graph");
  const hitEdges = graph.edges ? graph.edges.filter((e) => e.hit).length : 0;
  const graphPanel = panel("w7", `Neighbourhood of ${account}`, graph.error ? null :
    `${graph.nodes.length} nodes, ${hitEdges} hit edges (red; shadow rules dashed); click an account to open it`,
    hopsPicker(),
    graph.error ? h("div", { class: "empty" }, graph.error) : svg,
    h("div", { class: "legend" }, h("span", {}, h("i", { style: "background:#d92d20" }), "account with hits / hit edge"),
      h("span", {}, h("i", { style: "background:#2456d6" }), "account"),
      h("span", {}, h("i", { style: "background:#98a2b3" }), "shared identifier"),
      h("span", {}, h("i", { style: "background:#7a5af8" }), "merchant"),
      graph.truncated ? h("span", { class: "muted" }, "(truncated: more nodes than shown)") : null));
  view.replaceChildren(
    h("section", { class: "panel w12" }, h("h2", { id: "account-title" }, "Account ", account),
      h("a", { href: "#/" }, "← overview")),
    alertPanel,
    graphPanel,
    panel("w5 aggregates", "Window aggregates per rule", aggregates.error ? null :
      `as of its latest event ${shortTs(aggregates.as_of)}`,
      aggregates.error ? h("div", { class: "empty" }, aggregates.error) : table([
        { title: "rule", cell: (r) => r.rule_id },
        { title: "verdict", cell: (r) => tag(r.verdict, r.verdict === "fires" ? "fires" : "") },
        { title: "aggregate", num: true, cell: (r) => fmt(r.aggregate) },
        { title: "threshold", num: true, cell: (r) => fmt(r.threshold) },
        { title: "events", num: true, cell: (r) => r.contributing_count ?? "" }], aggregates.items)),
    panel("w12 account-hits", "Hits", hits.next_cursor ? "latest 50" : `${hits.items.length}`, hitsTable(hits.items, false)),
    panel("w12 activity", "Recent activity", activity.next_cursor ? "latest 50 events" : `${activity.items.length} events`, table([
      { title: "time", cell: (r) => shortTs(r.ts) },
      { title: "amount", num: true, cell: (r) => `${fmt(r.amount)} ${r.currency || ""}` },
      { title: "merchant", cell: (r) => r.merchant_id || "" },
      { title: "device / ip", cell: (r) => [r.device_id, r.ip].filter(Boolean).join(" / ") },
      { title: "email / phone", cell: (r) => [r.email, r.phone].filter(Boolean).join(" / ") }], activity.items,
      "no events for this account")));
  if (!graph.error) {
    graphPositions = FraudGraph.drawGraph(svg, graph, fresh ? null : graphPositions,
                                          (key) => { location.hash = "#/account/" + encodeURIComponent(key); });
    graphAccount = account;
  }
}

// --------------------------------------------------------------------------- routing and polling

async function render() {
  const match = location.hash.match(/^#\/account\/(.+?)(?:\/alert\/([0-9a-f]{32}))?$/);
  try {
    const mine = ++generation;
    if (match) await renderAccount(decodeURIComponent(match[1]), mine, match[2] || null);
    else { graphAccount = null; await renderOverview(mine); }
    if (mine !== generation) return;
    setStatus(true, "live, updated " + new Date().toLocaleTimeString());
    document.body.dataset.ready = "true";
  } catch (error) {
    setStatus(false, "error: " + error.message);
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => { if (!document.hidden) await render(); schedule(); }, REFRESH_MS);
}

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const account = document.getElementById("search-account").value.trim();
  if (account) location.hash = "#/account/" + encodeURIComponent(account);
});
window.addEventListener("hashchange", () => { graphAccount = null; render(); schedule(); });
render();
schedule();
