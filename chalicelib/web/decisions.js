// Recent decisions (POST /api/decisions answers) for the overview: its own panel, read from
// GET api/decisions. Where decisions are not kept for reading (AWS: the decision function's log)
// the panel says so instead of failing the page. Uses h, table, tag, shortTs, accountLink, panel
// and api from app.js (loaded after this file; called only once the page renders).
"use strict";

async function recentDecisions() {
  try {
    return { items: (await api("decisions?limit=15")).decisions, note: null };
  } catch (error) {
    return { items: [], note: error.message };
  }
}

function decisionsPanel(recent) {
  const hitsOf = (d) => d.hits.map((hit) => hit.rule_id).join(", ");
  return panel("w12 recent-decisions", "Recent decisions", recent.note || "POST api/decisions, newest first", table([
    { title: "event", cell: (d) => d.event_id },
    { title: "account", cell: (d) => d.hits.length ? accountLink(d.hits[0].account_id) : "" },
    { title: "decision", cell: (d) => tag(d.decision, "decision-" + d.decision) },
    { title: "hits", cell: hitsOf },
    { title: "rules judged", num: true, cell: (d) => d.rules.filter((r) => r.verdict !== "not_judged").length },
    { title: "took", num: true, cell: (d) => `${d.took_ms} ms` }], recent.items, "no decisions yet"));
}
