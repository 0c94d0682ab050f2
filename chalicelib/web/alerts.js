// The alert inbox on the investigator's page: the inbox and per-rule precision on the overview,
// and an alert's assign and verdict controls at the top of its account view (#/account/ID/alert/AID).
// Forms are built once and reused across the page's re-renders, so polling never wipes what an
// investigator is typing. Every value from the API is inserted as text (h() from app.js).
"use strict";

const FraudAlerts = (() => {
  const filters = { status: "", assignee: "" };
  let filterForm = null;
  const controls = new Map();  // alert id -> { version, node }

  async function post(path, body) {
    const response = await fetch("api/" + path, { method: "POST", body: JSON.stringify(body),
                                                  headers: { "Content-Type": "application/json", Accept: "application/json" } });
    const answer = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    return answer;
  }

  function alertLink(alert) {
    return h("a", { href: `#/account/${encodeURIComponent(alert.account_id)}/alert/${alert.alert_id}`,
                    class: "alert-link", "data-alert": alert.alert_id, "data-account": alert.account_id },
             alert.account_id);
  }

  function filterControls() {
    if (filterForm) return filterForm;
    const status = h("select", { id: "inbox-status", onchange: (e) => { filters.status = e.target.value; render(); } },
      ["", "open", "assigned", "closed"].map((s) => h("option", { value: s }, s || "any status")));
    const assignee = h("input", { id: "inbox-assignee", placeholder: "assignee", "aria-label": "assignee" });
    filterForm = h("form", { class: "inbox-filters", onsubmit: (e) => {
      e.preventDefault(); filters.assignee = assignee.value.trim(); render(); } },
      status, " ", assignee, " ", h("button", { type: "submit" }, "Filter"));
    return filterForm;
  }

  async function overviewPanels() {
    const query = new URLSearchParams({ limit: "50" });
    if (filters.status) query.set("status", filters.status);
    if (filters.assignee) query.set("assignee", filters.assignee);
    const [inbox, precision] = await Promise.all([
      api("alerts?" + query).catch((e) => ({ error: e.message, items: [] })),
      api("alert-precision").catch((e) => ({ error: e.message, items: [] }))]);
    return [
      panel("w8 inbox", "Alert inbox", inbox.next_cursor ? "most severe, then newest; first 50" :
        `${inbox.items.length} alerts, most severe then newest`, filterControls(),
        inbox.error ? h("div", { class: "empty" }, inbox.error) : table([
          { title: "severity", cell: (a) => tag(a.severity) },
          { title: "account", cell: (a) => alertLink(a) },
          { title: "status", cell: (a) => tag(a.status, "status-" + a.status) },
          { title: "assignee", cell: (a) => a.assignee || "" },
          { title: "verdict", cell: (a) => a.verdict ? tag(a.verdict, "verdict-" + a.verdict) : "" },
          { title: "hits", num: true, cell: (a) => fmt(a.hit_count) },
          { title: "rules", cell: (a) => a.rules.join(", ") },
          { title: "last hit", cell: (a) => shortTs(a.last_hit_ts) }], inbox.items, "no alerts")),
      panel("w4 precision", "Rule precision on decided alerts", "fraud / (fraud + legit); unsure counts in neither",
        table([
          { title: "rule", cell: (r) => r.rule_id },
          { title: "fraud", num: true, cell: (r) => r.fraud },
          { title: "legit", num: true, cell: (r) => r.legit },
          { title: "precision", num: true, cell: (r) => r.precision === null ? "–" :
            `${(100 * r.precision).toFixed(1)}%` }], precision.items, "no decided alerts yet"))];
  }

  function decisionForm(alert) {
    const message = h("div", { class: "alert-message", role: "status" });
    const act = async (path, body) => {
      try {
        await post(`alerts/${alert.alert_id}/${path}`, body);
        controls.delete(alert.alert_id);
        await render();
      } catch (error) {
        message.textContent = error.message;
      }
    };
    if (alert.status === "closed") {
      return h("div", { class: "alert-closed" }, `Closed: ${alert.verdict} by ${alert.assignee || "?"} at ` +
               `${shortTs(alert.closed_at)}`, alert.note ? ` - ${alert.note}` : "");
    }
    const assignee = h("input", { id: "alert-assignee", placeholder: "assignee", value: alert.assignee || "",
                                  "aria-label": "assignee" });
    const verdict = h("select", { id: "alert-verdict" }, ["fraud", "legit", "unsure"].map((v) => h("option", { value: v }, v)));
    const note = h("input", { id: "alert-note", placeholder: "note", "aria-label": "note" });
    return h("div", {},
      h("form", { class: "alert-assign", onsubmit: (e) => { e.preventDefault(); act("assign", { assignee: assignee.value.trim() }); } },
        assignee, " ", h("button", { type: "submit", id: "alert-assign-button" }, "Assign")),
      h("form", { class: "alert-verdict", onsubmit: (e) => {
        e.preventDefault(); act("verdict", { verdict: verdict.value, note: note.value.trim() || null }); } },
        verdict, " ", note, " ", h("button", { type: "submit", id: "alert-verdict-button" }, "Decide and close")),
      message);
  }

  async function alertPanel(alertId) {
    const detail = await api(`alerts/${alertId}`).catch((e) => ({ error: e.message }));
    if (detail.error) return panel("w12 alert", "Alert", null, h("div", { class: "empty" }, detail.error));
    const alert = detail.alert;
    let cached = controls.get(alertId);
    if (!cached || cached.version !== alert.version) {
      cached = { version: alert.version, node: decisionForm(alert) };
      controls.set(alertId, cached);
    }
    return panel("w12 alert", `Alert on ${alert.account_id}`,
      `${alert.hit_count} hits of ${alert.rules.join(", ")}; ${shortTs(alert.first_hit_ts)} to ${shortTs(alert.last_hit_ts)}`,
      h("div", { class: "alert-summary" }, tag(alert.severity), " ", tag(alert.status, "status-" + alert.status),
        alert.assignee ? ` assigned to ${alert.assignee}` : " unassigned",
        alert.verdict ? [" verdict ", tag(alert.verdict, "verdict-" + alert.verdict)] : null),
      cached.node,
      h("details", {}, h("summary", {}, `audit trail (${detail.audit.length})`), table([
        { title: "at", cell: (e) => shortTs(e.at) },
        { title: "who", cell: (e) => e.actor },
        { title: "what", cell: (e) => e.action },
        { title: "changes", cell: (e) => Object.entries(e.changes).map(([k, v]) =>
          `${k}: ${JSON.stringify(v[0])} → ${JSON.stringify(v[1])}`).join("; ") }], detail.audit.slice(-50))));
  }

  return { overviewPanels, alertPanel };
})();
