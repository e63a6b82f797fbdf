// The ATTT (an toàn thông tin, security posture) parts of the pages, drawn from the API's
// `attt` / `security` objects (docs/api.md): a school's status with its gates and coverage,
// its 30-day history strip and its checklist; a device's findings with their evidence and
// its OS support. Labels come with the data in the page's language; the codes' own labels
// (filters, counts) from /ui/texts.js.
import { h, link, localTime, num, pct, t } from "../core.js";

// School statuses, worst first (the order of sort=attt); check states, worst first.
export const ATTT_STATUSES = ["below", "insufficient", "improve", "meets", "no_pcs", "not_evaluated"];
export const NOT_MEETING = ["below", "insufficient", "improve"];
const STATES = ["fail", "unknown", "warn", "pass", "na"];
const SEVERITIES = ["critical", "high", "medium", "low"];

// A time of the ATTT objects, as the API renders every time: its ``<key>_local`` (Vietnam's
// time, the province's zone) shown like every other time of the pages.
export function when(obj, key) {
  return obj ? localTime(obj[key + "_local"]) : "—";
}

// "2026-10-13" → "13/10/2026"
export function day(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || "");
  return m ? m[3] + "/" + m[2] + "/" + m[1] : (iso || "—");
}

// A school's ATTT status as a badge (null: no ATTT answer at all, shown as not evaluated).
export function atttBadge(a) {
  const code = (a && a.status) || "not_evaluated";
  return h("span", { class: "st attt " + code, dataset: { attt: code } }, (a && a.label) || t("attt_status." + code));
}

export function stateBadge(state, label) {
  return h("span", { class: "st chk " + (state || "unknown"), dataset: { state: state || "unknown" } },
    label || t("check_state." + (state || "unknown")));
}

function severityBadge(code, label) {
  return h("span", { class: "sev " + (code || "") }, label || t("severity." + code));
}

function sortChecks(checks) {
  return checks.slice().sort((a, b) => STATES.indexOf(a.state) - STATES.indexOf(b.state) ||
    SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity));
}

// --- the school page ---------------------------------------------------------------------

function gates(a) {
  const cov = a.coverage || {};
  const rows = (a.gates || []).map((g) => h("tr", { dataset: { gate: g.id } },
    h("td", {}, g.label),
    h("td", { class: "num" }, pct(g.value_pct)),
    // "≥ 90 %", but "100 %": nothing is more than all
    h("td", { class: "num" }, (g.threshold_pct >= 100 ? "" : "≥ ") + pct(g.threshold_pct)),
    h("td", {}, g.ok === null || g.ok === undefined ? "—"
      : h("span", { class: "st chk " + (g.ok ? "pass" : "fail") }, t(g.ok ? "attt.gate_ok" : "attt.gate_not_ok")))));
  return h("div", {},
    h("p", { id: "attt-coverage" }, t("attt.coverage", { reporting: num(cov.reporting), pcs: num(cov.pcs),
      days: num(cov.days), pct: pct(cov.pct) })),
    rows.length ? h("div", { class: "scroll" }, h("table", { id: "attt-gates", class: "list" },
      h("thead", {}, h("tr", {}, h("th", {}, t("attt.gate")), h("th", { class: "num" }, t("attt.gate_value")),
        h("th", { class: "num" }, t("attt.gate_threshold")), h("th", {}, t("col.status")))),
      h("tbody", {}, rows))) : null);
}

// The last 30 days, one cell a day coloured by that day's status (oldest on the left).
export function historyStrip(history) {
  const days = history || [];
  if (!days.length) { return h("p", { class: "muted", id: "attt-history" }, t("attt.no_history")); }
  const cells = days.map((d) => {
    const label = day(d.day) + ": " + (d.status_label || t("attt_status." + d.status));
    return h("li", { class: "cell " + (d.status || "not_evaluated"), title: label, "aria-label": label,
      dataset: { day: d.day, status: d.status } });
  });
  // a key to the colours: the statuses the strip holds, worst first
  const seen = ATTT_STATUSES.filter((st) => days.some((d) => d.status === st));
  return h("figure", { class: "strip" },
    h("ol", { id: "attt-history", "aria-label": t("attt.history") }, cells),
    h("figcaption", { class: "muted" }, h("span", {}, day(days[0].day)), h("span", {}, day(days[days.length - 1].day))),
    h("p", { class: "legend muted", id: "attt-legend" }, seen.map((st) =>
      h("span", {}, h("i", { class: "cell " + st }), t("attt_status." + st)))));
}

function checkItem(c) {
  const counts = h("p", { class: "counts" }, STATES.filter((s) => c[s]).map((s) =>
    [h("span", { class: "st chk " + s, dataset: { count: s } }, t("check_state." + s) + " " + num(c[s])), " "]));
  const devs = c.devices || [];
  const notPassing = ["fail", "unknown", "warn"].reduce((n, s) => n + (c[s] || 0), 0);
  const list = devs.length ? h("details", { class: "devs", open: Boolean(c.fail) },
    h("summary", {}, t("attt.devices_not_passing", { n: num(notPassing) })),
    h("ul", {}, devs.map((d) => h("li", { dataset: { device: d.id } }, stateBadge(d.state, d.state_label), " ",
      link("/devices/" + encodeURIComponent(d.id), d.hostname || d.id),
      d.evidence ? h("span", { class: "muted" }, " — " + d.evidence) : null))),
    devs.length < (c.devices_total || 0) ? h("p", { class: "muted" }, t("attt.more_devices", { n: num(c.devices_total - devs.length) })) : null) : null;
  const worst = c.fail ? "fail" : c.unknown ? "unknown" : c.warn ? "warn" : c.pass ? "pass" : "na";
  return h("li", { class: "check " + worst, dataset: { check: c.id } },
    h("h4", {}, severityBadge(c.severity, c.severity_label), " ", c.title),
    counts, list,
    c.hint ? h("p", { class: "hint" }, h("strong", {}, t("attt.hint") + ": "), c.hint) : null,
    c.citation ? h("p", { class: "muted cite" }, t("attt.citation") + ": " + c.citation) : null);
}

// The school page's ATTT section: status, gates, coverage, history, checklist.
export function schoolAttt(s) {
  const a = s.attt;
  const box = h("section", { class: "attt", id: "attt" }, h("h3", {}, t("attt.title"), " ", atttBadge(a)));
  if (!a || a.status === "not_evaluated") {
    box.appendChild(h("p", { class: "note" }, t("attt.not_evaluated")));
    return box;
  }
  box.appendChild(h("p", { class: "muted" }, a.since ? t("attt.since", { time: when(a, "since") }) + " · " : "",
    t("attt.evaluated", { time: when(a, "evaluated_at") })));
  if (a.status === "no_pcs") { box.appendChild(h("p", { class: "note" }, t("attt.no_pcs"))); }
  box.appendChild(h("div", { class: "two attt-head" },
    h("div", {}, h("h4", {}, t("attt.gates")), gates(a)),
    h("div", {}, h("h4", {}, t("attt.history")), historyStrip(a.history))));
  const checks = a.checks || [];
  box.appendChild(h("h4", {}, t("attt.checklist")));
  box.appendChild(h("ol", { class: "checks", id: "attt-checks" }, checks.map(checkItem)));
  return box;
}

// --- the device page ---------------------------------------------------------------------

// "hết hỗ trợ · Windows 8.1 (hết hỗ trợ 10/01/2023)": a device's OS support, for its inventory.
export function osSupport(sec) {
  const o = sec && sec.os_support;
  if (!o) { return "—"; }
  return h("span", { id: "os-support" }, h("span", { class: "st os " + (o.status || "unknown"), dataset: { support: o.status } },
    o.status_label || t("os_support." + (o.status || "unknown"))), o.label ? " " + o.label : "");
}

export function deviceFindings(d) {
  const sec = d.security;
  const box = h("section", { class: "attt", id: "findings" }, h("h3", {}, t("attt.findings"),
    sec && d.role !== "router" ? [" ", stateBadge(sec.worst, sec.worst_label)] : null));
  if (!sec || d.role === "router") {  // a router is not judged by the PC baseline at all
    box.appendChild(h("p", { class: "note", id: "no-security" }, t(d.role === "router" ? "attt.router" : "attt.no_report")));
    return box;
  }
  const c = sec.counts || {};
  box.appendChild(h("p", { class: "counts" }, STATES.filter((s) => c[s]).map((s) =>
    [h("span", { class: "st chk " + s, dataset: { count: s } }, t("check_state." + s) + " " + num(c[s])), " "]),
  h("span", { class: "muted" }, t("attt.reported", { time: when(sec, "reported_at") }))));
  // never reported is not "silent for more than 7 days" (the store marks both stale)
  if (!sec.reported_at) { box.appendChild(h("p", { class: "situation", id: "no-security" }, t("attt.no_report"))); }
  else if (sec.stale) { box.appendChild(h("p", { class: "situation", id: "stale" }, t("attt.stale"))); }
  else if (c.unknown) { box.appendChild(h("p", { class: "note", id: "unknown-note" }, t("attt.unknown_note"))); }
  if (sec.frozen) {
    box.appendChild(h("p", { class: "note", id: "frozen" }, t("attt.frozen", { product: sec.freeze_product || "Deep Freeze" })));
  }
  const rows = sortChecks(sec.checks || []).map((k) => h("tr", { dataset: { check: k.id, state: k.state } },
    h("td", {}, stateBadge(k.state, k.state_label)),
    h("td", {}, k.title, h("br"), severityBadge(k.severity, k.severity_label)),
    h("td", {}, k.evidence || "—"),
    h("td", { "data-label": t("col.since") + ":" }, when(k, "since")),
    h("td", {}, k.state === "pass" || k.state === "na" ? h("span", { class: "muted" }, "—") : (k.hint || "—"),
      k.citation ? [h("br"), h("small", { class: "muted" }, t("attt.citation") + ": " + k.citation)] : null)));
  box.appendChild(h("div", { class: "scroll" }, h("table", { id: "findings-table", class: "list" },
    h("thead", {}, h("tr", {}, h("th", {}, t("col.status")), h("th", {}, t("col.check")), h("th", {}, t("col.evidence")),
      h("th", {}, t("col.since")), h("th", {}, t("attt.hint")))),
    h("tbody", {}, rows))));
  return box;
}

// The device lists' ATTT cell: the worst state, and how many checks fail.
export function deviceCell(d) {
  const a = d.attt;
  if (!a) { return h("span", { class: "muted" }, "—"); }
  return h("span", {}, stateBadge(a.worst, a.worst_label), a.fail ? " " + t("attt.failing", { n: num(a.fail) }) : "");
}
