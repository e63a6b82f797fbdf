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
  // the coverage gate names the PCs that did not report in the window, each a link
  const covGate = (a.gates || []).find((g) => g.id === "coverage") || {};
  const missing = covGate.missing || [];
  const moreMissing = (covGate.missing_total || missing.length) - missing.length;
  const missingList = missing.length ? h("p", { id: "attt-missing" },
    t("attt.missing", { n: num(covGate.missing_total || missing.length), days: num(cov.days) }), " ",
    missing.map((d, i) => [i ? ", " : "", link("/devices/" + encodeURIComponent(d.id), d.hostname || d.id),
      d.never_reported ? h("span", { class: "muted" }, " (" + t("attt.missing_never") + ")") : null]),
    moreMissing > 0 ? h("span", { class: "muted" }, " " + t("attt.more_devices", { n: num(moreMissing) })) : null) : null;
  return h("div", {},
    h("p", { id: "attt-coverage" }, t("attt.coverage", { reporting: num(cov.reporting), pcs: num(cov.pcs),
      days: num(cov.days), pct: pct(cov.pct) })),
    rows.length ? h("div", { class: "scroll" }, h("table", { id: "attt-gates", class: "list" },
      h("thead", {}, h("tr", {}, h("th", {}, t("attt.gate")), h("th", { class: "num" }, t("attt.gate_value")),
        h("th", { class: "num" }, t("attt.gate_threshold")), h("th", {}, t("col.status")))),
      h("tbody", {}, rows))) : null,
    missingList);
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
  // a medium or low check never changes the school's status: its failures are amber, not red
  const minor = c.severity === "medium" || c.severity === "low";
  return h("li", { class: "check " + worst + (minor ? " minor" : ""), dataset: { check: c.id } },
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
  // since the evaluator's first judgement: the status may have begun earlier, said so
  box.appendChild(h("p", { class: "muted", id: "attt-since" }, a.since ? t(a.since_first_evaluation ? "attt.since_first_school" : "attt.since",
    { time: when(a, "since") }) + " · " : "", t("attt.evaluated", { time: when(a, "evaluated_at") })));
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

// "hết hỗ trợ từ 10/01/2023", "được hỗ trợ đến 30/06/2028": a device's OS support, for its
// inventory (the OS itself is the row above; the support table's entry in the tooltip).
export function osSupport(sec) {
  const o = sec && sec.os_support;
  if (!o) { return "—"; }
  return h("span", { id: "os-support", title: o.label || "" }, h("span", { class: "st os " + (o.status || "unknown"), dataset: { support: o.status } },
    o.text || o.status_label || t("os_support." + (o.status || "unknown"))));
}

export function deviceFindings(d) {
  const sec = d.security;
  const box = h("section", { class: "attt", id: "findings" }, h("h3", {}, t("attt.findings"),
    sec ? [" ", sec.summary ? summaryBadge(sec) : stateBadge(sec.worst, sec.worst_label)] : null));
  if (!sec) {
    box.appendChild(h("p", { class: "note", id: "no-security" }, t(d.role === "router" ? "attt.router" : "attt.no_report")));
    return box;
  }
  if (sec.applicable === false) {  // a router: no check applies, nothing is missing
    box.appendChild(h("p", { class: "note", id: "not-applicable" }, t(d.role === "router" ? "attt.router" : "attt.not_applicable")));
    return box;
  }
  const c = sec.counts || {};
  box.appendChild(h("p", { class: "counts" }, STATES.filter((s) => c[s]).map((s) =>
    [h("span", { class: "st chk " + s, dataset: { count: s } }, t("check_state." + s) + " " + num(c[s])), " "]),
  sec.never_reported ? null : h("span", { class: "muted" }, t("attt.reported", { time: when(sec, "reported_at") }))));
  if (sec.never_reported) {  // an old agent, or no scan yet: what to do, not "silent for 7 days"
    box.appendChild(h("p", { class: "situation", id: "never-reported" }, t("attt.never_reported")));
  } else if (sec.stale) {
    box.appendChild(h("p", { class: "situation", id: "stale" }, t("attt.stale")));
  } else if (c.unknown) {  // some facts unread: where the reason is, and what clears it
    box.appendChild(h("p", { class: "note", id: "unknown-note" }, t("attt.unknown_note")));
  }
  if (sec.frozen) {
    const names = (sec.frozen_checks || []).map((k) => "“" + k.title + "”").join(", ");
    box.appendChild(h("p", { class: "note", id: "frozen" }, t("attt.frozen", { product: sec.freeze_product || "Deep Freeze", checks: names })));
  }
  const rows = sortChecks(sec.checks || []).map((k) => h("tr", { dataset: { check: k.id, state: k.state } },
    h("td", {}, stateBadge(k.state, k.state_label)),
    h("td", {}, k.title, h("br"), severityBadge(k.severity, k.severity_label)),
    h("td", {}, k.evidence || "—"),
    h("td", { "data-label": t("col.since") + ":" }, when(k, "since"),
      k.since_first_evaluation ? [h("br"), h("small", { class: "muted since-first" }, t("attt.since_first"))] : null),
    // no report, or none for 7 days: the note above says what to do, once
    h("td", {}, k.state === "pass" || k.state === "na" || ((sec.never_reported || sec.stale) &&
      (k.hint_code === "no_report" || k.hint_code === "stale")) ? h("span", { class: "muted" }, "—") : (k.hint || "—"),
      k.citation ? [h("br"), h("small", { class: "muted" }, t("attt.citation") + ": " + k.citation)] : null)));
  box.appendChild(h("div", { class: "scroll" }, h("table", { id: "findings-table", class: "list" },
    h("thead", {}, h("tr", {}, h("th", {}, t("col.status")), h("th", {}, t("col.check")), h("th", {}, t("col.evidence")),
      h("th", {}, t("col.since")), h("th", {}, t("attt.hint")))),
    h("tbody", {}, rows))));
  return box;
}

// A device's ATTT summary (the API's ``summary`` / ``summary_label``): red only when a
// required (critical or high) check fails; a PC passing those with medium or low findings is
// amber, "Đạt tiêu chí bắt buộc" in the badge and "· 1 tiêu chí cần khắc phục" beside it
// (the label's parts are joined by " · ").
export function summaryBadge(a) {
  const parts = (a.summary_label || a.worst_label || "—").split(" · ");
  return h("span", { class: "summary" },
    h("span", { class: "st chk " + a.summary, dataset: { summary: a.summary } }, parts[0]),
    parts.length > 1 ? h("span", { class: "muted" }, " · " + parts.slice(1).join(" · ")) : null);
}

// The device lists' ATTT cell: the device's summary (before it: the worst state, and how
// many checks fail).
export function deviceCell(d) {
  const a = d.attt;
  if (!a) { return h("span", { class: "muted" }, "—"); }
  if (a.summary) { return summaryBadge(a); }
  return h("span", {}, stateBadge(a.worst, a.worst_label), a.fail ? " " + t("attt.failing", { n: num(a.fail) }) : "");
}
