// Alerts: the alerts page (/alerts: tabs open / not handled / acknowledged / silenced /
// resolved, filters in the address, acknowledge and silence from the row, the silences in
// force, and for administrators the delivery panel), one alert (/alerts/{id}: its history),
// and the open alerts shown on the school page, the device page and the overview.
// The API orders alerts (most severe first, the oldest first within a severity); times come
// as the province's local time (*_local) and are shown so, with "x giờ trước".
import { ago, api, codes, dash, filterSelect, h, link, localTime, may, num, pager, qs, session, t } from "../core.js";
import { current, go, rewrite, settled } from "../nav.js";
import { areaOptions } from "./schools.js";

const TABS = ["open", "new", "acknowledged", "silenced", "pending", "resolved"];
const FILTERS = ["state", "severity", "kind", "area", "school", "page"];
const DURATIONS = [["1h", 3600], ["4h", 4 * 3600], ["1d", 86400], ["3d", 3 * 86400], ["7d", 7 * 86400], ["30d", 30 * 86400]];

export function severityBadge(a) {
  return h("span", { class: "st asev " + a.severity }, a.severity_label || t("alert_severity." + a.severity));
}

function handlingBadge(a) {
  // a pending alert has not fired: nobody is asked to handle it yet
  if (a.state === "pending") { return h("span", { class: "st handling pending" }, t("alert_state.pending")); }
  return h("span", { class: "st handling " + a.handling }, a.handling_label || t("alert_handling." + a.handling));
}

// "21:05 22/11/2026 · 3 giờ trước"
function since(iso) {
  return [localTime(iso), h("br"), h("small", { class: "muted" }, t("alerts.ago", { ago: ago(iso) }))];
}

function subject(a) {
  const parts = [];
  if (a.school) { parts.push(link("/schools/" + encodeURIComponent(a.school.code), a.school.name)); }
  if (a.device) { parts.push(h("br"), link("/devices/" + encodeURIComponent(a.device.id), a.device.name)); }
  if (!parts.length) { parts.push(t("alert_kind.collector")); }
  return parts;
}

function ackLine(a) {
  if (!a.ack) { return null; }
  return h("p", { class: "ack muted" }, t("alerts.acked_by", { who: a.ack.by, time: localTime(a.ack.ts_local), comment: a.ack.comment }));
}

// The province's UTC offset as the API writes it ("+07:00"), from any local time it sent:
// the expiry picker's time is the province's, whatever the browser's zone.
function offsetOf(iso) {
  const m = /([+-]\d{2}:\d{2})$/.exec(iso || "");
  return m ? m[1] : "+07:00";
}

// Acknowledge: a comment (who is on it, what they do), then the row redraws.
function ackForm(a, done) {
  const comment = h("textarea", { id: "ack-comment-" + a.id, class: "ack-comment", name: "comment", required: true, maxlength: 1000, rows: 2, placeholder: t("alerts.ack_comment") });
  const msg = h("span", { class: "error", role: "alert" });
  const form = h("form", { class: "inline-form ack-form", dataset: { alert: String(a.id) } },
    h("label", {}, t("alerts.ack_comment"), comment),
    h("button", { type: "submit", class: "primary" }, t("alerts.ack")),
    h("button", { type: "button", class: "cancel", onclick: () => form.remove() }, t("alerts.cancel")), msg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.textContent = "";
    try {
      await api("/api/v1/alerts/" + a.id + "/ack", { method: "POST", body: { comment: comment.value } });
      done(t("alerts.done_ack"));
    } catch (e) { msg.textContent = e.message; }
  });
  return form;
}

// Silence: by the rule at this school, the school, the device or the area, for a while or
// until a moment (the province's time); a reason. A scoped user is offered only what stays
// inside their units (a rule alone would silence the whole province).
function silenceForm(a, done) {
  const scoped = session.user && (session.user.units || []).length > 0;
  const options = [];
  if (a.school) { options.push(["rule_school", { rule: a.rule, school_code: a.school.code }]); }
  if (a.device) { options.push(["device", { device_id: a.device.id }]); }
  if (a.school) { options.push(["school", { school_code: a.school.code }]); }
  if (a.area && !scoped) { options.push(["area", { area_code: a.area.code }]); }
  if (!scoped) { options.push(["rule", { rule: a.rule }]); }
  const by = h("select", { class: "silence-by", name: "by" }, options.map(([k], i) => h("option", { value: String(i) }, t("alerts.silence_by." + k))));
  const dur = h("select", { class: "silence-for", name: "for" }, DURATIONS.map(([k, s]) => h("option", { value: String(s), selected: k === "1d" }, t("alerts.dur." + k))));
  const until = h("input", { type: "datetime-local", class: "silence-until", name: "until" });
  const kind = h("select", { class: "silence-kind", name: "kind" }, codes("silence_kind.").map((k) => h("option", { value: k }, t("silence_kind." + k))));
  const reason = h("input", { class: "silence-comment", name: "comment", required: true, maxlength: 1000, placeholder: t("alerts.silence_comment") });
  const msg = h("span", { class: "error", role: "alert" });
  const form = h("form", { class: "inline-form silence-form", dataset: { alert: String(a.id) } },
    h("label", {}, t("alerts.silence_by"), by), h("label", {}, t("alerts.silence_for"), dur),
    h("label", {}, t("alerts.silence_until"), until), h("label", {}, t("alerts.silence_kind"), kind),
    h("label", {}, t("alerts.silence_comment"), reason),
    h("button", { type: "submit", class: "primary" }, t("alerts.silence")),
    h("button", { type: "button", class: "cancel", onclick: () => form.remove() }, t("alerts.cancel")), msg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.textContent = "";
    const body = Object.assign({ kind: kind.value, comment: reason.value }, options[Number(by.value)][1]);
    if (until.value) { body.ends_at = until.value + ":00" + offsetOf(a.started_at_local); } else { body.duration_s = Number(dur.value); }
    try {
      const s = await api("/api/v1/silences", { method: "POST", body: body });
      done(t("alerts.done_silence", { time: localTime(s.ends_at_local) }));
    } catch (e) { msg.textContent = e.message; }
  });
  return form;
}

function unackButton(a, done) {
  const b = h("button", { type: "button", class: "unack" }, t("alerts.unack"));
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await api("/api/v1/alerts/" + a.id + "/unack", { method: "POST", body: {} }); done(""); } catch (e) { b.disabled = false; b.title = e.message; }
  });
  return b;
}

// The buttons a row offers (only to the roles that may: the API decides anyway).
function actionsCell(a, done) {
  if (a.handling === "resolved") { return null; }
  const cell = h("div", { class: "alert-actions" });
  const formSlot = h("div", { class: "form-slot" });
  const open = (make) => { formSlot.textContent = ""; formSlot.appendChild(make(a, done)); const f = formSlot.querySelector("textarea, input"); if (f) { f.focus(); } };
  if (may("ack")) {
    if (a.ack) { cell.appendChild(unackButton(a, done)); } else {
      cell.appendChild(h("button", { type: "button", class: "ack", onclick: () => open(ackForm) }, t("alerts.ack")));
    }
  }
  if (may("silence") && a.handling !== "silenced") {
    cell.append(" ", h("button", { type: "button", class: "silence", onclick: () => open(silenceForm) }, t("alerts.silence")));
  }
  cell.appendChild(formSlot);
  return cell;
}

// A small mark beside an alert whose notification failed or gave up: a link to the alert's
// page, where its messages and their errors are listed.
function deliveryMark(a) {
  if (!a.delivery || !a.delivery.failed) { return null; }
  const label = t("alerts.delivery_failed");
  return [" ", h("a", { href: "/alerts/" + a.id + "#notifications", class: "delivery-failed", title: label, "aria-label": label }, "⚠")];
}

function alertRows(items, done) {
  const td = (key, cls, ...children) => h("td", { class: cls || null, "data-label": key ? t(key) : null }, ...children);
  return items.map((a) => h("tr", { dataset: { alert: String(a.id), severity: a.severity, handling: a.handling } },
    td(null, "badge", severityBadge(a)),
    td(null, "name", link("/alerts/" + a.id, a.title), deliveryMark(a), a.text ? [h("br"), h("small", { class: "muted" }, a.text)] : null,
      a.suppressed_by ? [h("br"), h("small", { class: "muted" }, t("alerts.suppressed", { id: a.suppressed_by }))] : null, ackLine(a)),
    td("alerts.col.subject", null, subject(a)),
    td("alerts.col.since", null, since(a.began_at_local || a.started_at_local)),
    td("alerts.col.state", "badge", handlingBadge(a)),
    td(null, null, actionsCell(a, done))));
}

function alertTable(items, id, emptyKey, done) {
  const rows = alertRows(items, done);
  if (!rows.length) { rows.push(h("tr", { class: "none" }, h("td", { colspan: 6 }, t(emptyKey)))); }
  return h("div", { class: "scroll" }, h("table", { id: id, class: "list stack alerts" },
    h("thead", {}, h("tr", {}, ["alerts.col.severity", "alerts.col.alert", "alerts.col.subject", "alerts.col.since", "alerts.col.state", "alerts.col.actions"].map((k) => h("th", {}, t(k))))),
    h("tbody", {}, rows)));
}

// "quy tắc device_disk_full · Trường TH Kim Đồng · thiết bị PC-LAB-01": names where the
// API gives them (a school's name says "Trường ..." itself), codes otherwise.
function matchersText(s) {
  const name = { area_code: s.area_name, device_id: s.device_name };
  return ["rule", "school_code", "area_code", "device_id"].filter((k) => s[k]).map((k) =>
    (k === "school_code" && s.school_name) ? s.school_name : t("alerts.matcher." + k, { v: name[k] || s[k] })).join(" · ");
}

function silencesTable(items, refresh, status) {
  const rows = items.map((s) => h("tr", { dataset: { silence: String(s.id) } },
    h("td", { class: "badge" }, h("span", { class: "st " + s.silence_state }, s.kind_label)),
    h("td", { "data-label": t("alerts.silence_applies") }, matchersText(s)),
    h("td", { "data-label": t("alerts.silence_from") }, localTime(s.starts_at_local)),
    h("td", { "data-label": t("alerts.silence_ends") }, localTime(s.ends_at_local)),
    h("td", { "data-label": t("alerts.silence_who") }, dash(s.created_by)),
    h("td", { "data-label": t("alerts.silence_comment") }, dash(s.comment)),
    h("td", {}, may("silence") ? h("button", { type: "button", class: "delete-silence", onclick: async (ev) => {
      if (!window.confirm(t("alerts.silence_delete_confirm"))) { return; }
      ev.target.disabled = true;
      try { await api("/api/v1/silences/" + s.id, { method: "DELETE" }); await refresh(); } catch (e) { ev.target.disabled = false; status.textContent = e.message; }
    } }, t("alerts.silence_delete")) : null)));
  if (!rows.length) { rows.push(h("tr", { class: "none" }, h("td", { colspan: 7 }, t("alerts.silences_none")))); }
  return h("div", { class: "scroll" }, h("table", { id: "silences", class: "list stack" },
    h("thead", {}, h("tr", {}, ["alerts.silence_kind", "alerts.silence_applies", "alerts.silence_from", "alerts.silence_ends", "alerts.silence_who", "alerts.silence_comment", "alerts.col.actions"].map((k) => h("th", {}, t(k))))),
    h("tbody", {}, rows)));
}

// Administrators: how the notifications go out, per channel, and the latest failures.
function deliveryPanel(d) {
  const health = (c) => {
    if (!c.health) { return h("span", { class: "st unknown" }, t("alerts.delivery.unknown")); }
    return c.health.ok ? h("span", { class: "st online" }, t("alerts.delivery.ok"))
      : h("span", { class: "st offline" }, t("alerts.delivery.failing", { since: localTime(c.health.since_local) }));
  };
  const rows = (d.channels || []).map((c) => h("tr", { dataset: { channel: c.channel } },
    h("td", { class: "name" }, c.channel_label), h("td", { "data-label": t("alerts.delivery.health") }, health(c)),
    ["queued", "failed", "dead"].map((k) => h("td", { class: "num" + (k !== "queued" && c[k] ? " bad" : ""), "data-label": t("notif_state." + k) }, num(c[k]))),
    h("td", { class: "num", "data-label": t("alerts.delivery.sent_24h") }, num(c.sent_24h)),
    h("td", { "data-label": t("alerts.delivery.last_sent") }, localTime(c.last_sent_at_local)),
    h("td", { "data-label": t("alerts.delivery.last_error") }, dash(c.last_error))));
  const fails = (d.failures || []).map((f) => h("tr", {},
    h("td", {}, localTime(f.created_at_local)), h("td", {}, f.channel_label), h("td", {}, dash(f.recipient)),
    h("td", {}, h("span", { class: "st " + (f.state === "dead" ? "offline" : "partial") }, f.state_label)),
    h("td", { class: "num" }, num(f.attempts)), h("td", {}, dash(f.last_error))));
  return h("section", { id: "delivery" }, h("h3", {}, t("alerts.delivery")),
    h("div", { class: "scroll" }, h("table", { id: "channels", class: "list stack" },
      h("thead", {}, h("tr", {}, h("th", {}, t("alerts.delivery.channel")), h("th", {}, t("alerts.delivery.health")),
        h("th", { class: "num" }, t("notif_state.queued")), h("th", { class: "num" }, t("notif_state.failed")),
        h("th", { class: "num" }, t("notif_state.dead")), h("th", { class: "num" }, t("alerts.delivery.sent_24h")),
        h("th", {}, t("alerts.delivery.last_sent")), h("th", {}, t("alerts.delivery.last_error")))),
      h("tbody", {}, rows))),
    h("h4", {}, t("alerts.delivery.failures")),
    fails.length ? h("div", { class: "scroll" }, h("table", { id: "failures", class: "list" }, h("tbody", {}, fails)))
      : h("p", { class: "muted", id: "no-failures" }, t("alerts.delivery.no_failures")));
}

export async function render(root, gen, args, params) {
  const state = {};
  for (const k of FILTERS) { state[k] = params.get(k) || ""; }
  if (!TABS.includes(state.state)) { state.state = state.state || "open"; }
  document.title = t("nav.alerts") + " — schoolmon";
  const org = await api("/api/v1/org").catch(() => ({ roots: [] }));
  if (!current(gen)) { return; }
  root.textContent = "";
  root.appendChild(h("h2", { id: "page-title" }, t("nav.alerts")));
  const tabs = h("nav", { class: "tabs", id: "alert-tabs" });
  const form = h("form", { id: "filters", class: "filters" },
    filterSelect("severity", t("alerts.filter.severity"), state.severity, codes("alert_severity.").map((c) => [c, t("alert_severity." + c)])),
    filterSelect("kind", t("alerts.filter.kind"), state.kind, codes("alert_kind.").map((c) => [c, t("alert_kind." + c)])),
    filterSelect("area", t("alerts.filter.area"), state.area, areaOptions(org)),
    h("label", {}, t("alerts.filter.school"), h("input", { id: "f-school", name: "school", value: state.school, maxlength: 64, autocomplete: "off" })));
  const status = h("p", { id: "alerts-status", role: "status", class: "muted" });
  const out = h("div", { id: "alert-list" });
  const info = h("p", { class: "pager", id: "pageinfo" });
  const sil = h("section", { id: "silences-box" });
  root.append(tabs, form, status, out, info, sil);
  let seq = 0;
  async function refresh(message) {
    const mine = ++seq;
    settled(false);
    rewrite("/alerts" + qs(Object.assign({}, state, { state: state.state === "open" ? "" : state.state })));
    const [r, s, d] = await Promise.all([
      api("/api/v1/alerts" + qs(state)),
      api("/api/v1/silences"),
      may("audit") ? api("/api/v1/notifications").catch(() => null) : Promise.resolve(null)]);
    if (mine !== seq || !current(gen)) { return; }
    const counts = (r.counts || {}).by_handling || {};
    tabs.textContent = "";
    for (const tab of TABS) {
      const n = tab === "open" ? (r.counts || {}).open : tab === "pending" ? (r.counts || {}).pending : counts[tab];
      const a = h("a", { href: "/alerts" + qs(Object.assign({}, state, { state: tab === "open" ? "" : tab, page: "" })), id: "tab-" + tab,
        class: tab === state.state ? "here" : null }, tab === "open" ? t("alerts.tab.open") : tab === "pending" ? t("alert_state.pending") : t("alert_handling." + tab),
        n === undefined ? null : h("span", { class: "n" }, " " + num(n)));
      a.addEventListener("click", (ev) => { ev.preventDefault(); state.state = tab; state.page = ""; refresh().catch(() => settled(true)); });
      tabs.appendChild(a);
    }
    status.textContent = message || "";
    out.textContent = "";
    const none = state.state === "open" && !state.severity && !state.kind && !state.area && !state.school ? "alerts.none_open" : "alerts.none";
    out.appendChild(alertTable(r.items || [], "alerts", none, (m) => refresh(m).catch(() => settled(true))));
    pager(info, r, "alerts.pager", (n) => { state.page = String(n); refresh().catch(() => settled(true)); });
    sil.textContent = "";
    sil.append(h("h3", {}, t("alerts.silences")), silencesTable(s.items || [], () => refresh(), status));
    const old = document.getElementById("delivery");
    if (old) { old.remove(); }
    if (d) { root.appendChild(deliveryPanel(d)); }
    settled(true);
  }
  form.addEventListener("change", () => {
    for (const el of form.elements) { if (el.name) { state[el.name] = el.value.trim(); } }
    state.page = "";
    refresh().catch(() => settled(true));
  });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); form.dispatchEvent(new Event("change")); });
  await refresh();
}

// One alert (/alerts/{id}): what it says, where, its evidence and its history.
export async function renderOne(root, gen, args) {
  const a = await api("/api/v1/alerts/" + encodeURIComponent(args[0]));
  if (!current(gen)) { return; }
  document.title = a.title + " — schoolmon";
  root.textContent = "";
  root.append(h("nav", { class: "crumbs" }, link("/alerts", t("nav.alerts")), " › #" + a.id),
    h("h2", { id: "page-title" }, severityBadge(a), " ", a.title, " ", handlingBadge(a)));
  const msg = h("p", { id: "alerts-status", role: "status", class: "muted" });
  const done = (m) => go(location.pathname, true).then(() => { const s = document.getElementById("alerts-status"); if (s) { s.textContent = m; } });
  root.append(msg, h("p", { id: "alert-text" }, dash(a.text)), ackLine(a) || "", actionsCell(a, done) || "");
  // the evidence is said in words by the text above (with units and local times); its raw
  // keys and epoch seconds are for the API, not the page
  const pairs = [[t("alerts.col.subject"), subject(a)], [t("alerts.col.since"), since(a.began_at_local || a.started_at_local)]];
  if (a.fired_at_local) { pairs.push([t("alert_state.firing"), localTime(a.fired_at_local)]); }
  if (a.resolved_at_local) { pairs.push([t("alert_handling.resolved"), localTime(a.resolved_at_local)]); }
  root.appendChild(h("dl", { class: "facts" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  root.appendChild(h("h3", {}, t("alerts.history")));
  root.appendChild(h("div", { class: "scroll" }, h("table", { id: "history", class: "list" }, h("tbody", {},
    (a.events || []).slice().reverse().map((e) => h("tr", { dataset: { kind: e.kind } },
      h("td", {}, localTime(e.ts_local)), h("td", {}, e.kind_label || e.kind), h("td", {}, dash(e.actor)),
      h("td", {}, e.detail && e.detail.comment ? e.detail.comment : "")))))));
  root.appendChild(notificationsSection(a.notifications || []));
}

// "Thông báo đã gửi": each message about the alert and its fate (the outbox's state, the
// attempts, when it went or when it is tried again, the last error in the reader's language).
function notificationsSection(items) {
  const badge = { sent: "online", failed: "partial", dead: "offline", queued: "unknown", sending: "unknown" };
  const rows = items.map((n) => h("tr", { dataset: { notification: String(n.id), state: n.state } },
    h("td", { "data-label": t("alerts.notif.sent_at") }, localTime(n.sent_at_local || n.created_at_local)),
    h("td", { "data-label": t("alerts.delivery.channel") }, n.channel_label || n.channel),
    h("td", { "data-label": t("alerts.delivery.recipient") }, dash(n.recipient)),
    h("td", { "data-label": t("alerts.notif.kind") }, n.kind_label || n.kind),
    h("td", { "data-label": t("alerts.notif.state") }, h("span", { class: "st " + (badge[n.state] || "unknown") }, n.state_label || n.state),
      n.next_attempt_at_local && n.state === "failed" ? [h("br"), h("small", { class: "muted" }, t("alerts.notif.next_attempt", { time: localTime(n.next_attempt_at_local) }))] : null),
    h("td", { class: "num", "data-label": t("alerts.delivery.attempts") }, num(n.attempts)),
    h("td", { "data-label": t("alerts.delivery.last_error") }, dash(n.last_error_text))));
  const box = h("section", { id: "notifications" }, h("h3", {}, t("alerts.notifications")));
  if (!rows.length) {
    box.appendChild(h("p", { class: "muted", id: "no-notifications" }, t("alerts.notifications_none")));
    return box;
  }
  box.appendChild(h("div", { class: "scroll" }, h("table", { id: "notifications-list", class: "list stack" },
    h("thead", {}, h("tr", {}, ["alerts.notif.sent_at", "alerts.delivery.channel", "alerts.delivery.recipient", "alerts.notif.kind", "alerts.notif.state", "alerts.delivery.attempts", "alerts.delivery.last_error"].map((k) => h("th", {}, t(k))))),
    h("tbody", {}, rows))));
  return box;
}

// The open alerts of a school or a device, at the top of its page: nothing when none is
// open. ``filter``: {school} or {device}. Returns the section; ``ready`` settles when drawn.
export function openAlerts(filter) {
  const box = h("section", { class: "open-alerts", id: "open-alerts", hidden: true });
  box.ready = api("/api/v1/alerts" + qs(Object.assign({ state: "open", per_page: 20 }, filter))).then((r) => {
    const items = r.items || [];
    if (!items.length) { return; }
    const reload = () => go(location.pathname + location.search, true);
    box.append(h("h3", {}, t("alerts.open_here", { n: num(r.total) })),
      alertTable(items, "open-alerts-list", "alerts.none_open", reload),
      h("p", {}, link("/alerts" + qs(filter), t("alerts.see_all"))));
    box.hidden = false;
  }, () => {});
  return box;
}

// The overview's alert cards: open alerts by severity and those nobody handles yet, each a
// link to the alerts page filtered so.
export function overviewCards(card) {
  const box = h("div", { id: "overview-alerts" });
  box.ready = api("/api/v1/alerts?per_page=1").then((r) => {
    const c = r.counts || {}, sev = c.by_severity || {}, hand = c.by_handling || {};
    box.append(h("h2", {}, t("alerts.overview_title")),
      h("section", { class: "cards", id: "cards-alerts" },
        card(c.open || 0, t("alerts.tab.open"), "/alerts", c.open ? "offline" : "online"),
        codes("alert_severity.").map((s) => {
          const x = card(sev[s] || 0, t("alert_severity." + s), "/alerts" + qs({ severity: s }), "asev " + s);
          x.dataset.severity = s;
          return x;
        }),
        card(hand.new || 0, t("alert_handling.new"), "/alerts?state=new", hand.new ? "partial" : "")));
    if (!c.open) { box.appendChild(h("p", { class: "muted", id: "alerts-none" }, t("alerts.none_open"))); }
  }, () => {});
  return box;
}

