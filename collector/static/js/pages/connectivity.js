// The connectivity (kết nối Internet) parts of the pages, drawn from the API's
// `connectivity` objects (docs/api.md): a school's status with its reasons in words, its
// contract, latest test, router, lease and data used, the charts of its tests against the
// contracted speed and the baseline lines, its daily uptime and the recent tests; a
// router's own fields on its device page; and the /connectivity page (ISPs compared, the
// province's counts by status, each number a link to the list it counts).
import { api, dataBytes, h, link, localTime, may, num, pct, qs, t } from "../core.js";
import { current, settled } from "../nav.js";
import { timeChart } from "../chart.js";

// Worst first (the order of sort=connectivity); "not meeting" is improve + below.
export const CONN_STATUSES = ["below", "improve", "insufficient", "meets"];
const RANGES = [7, 30];

export function connBadge(c) {
  const code = (c && c.status) || "insufficient";
  return h("span", { class: "st conn " + code, dataset: { conn: code } }, (c && c.label) || t("conn_status." + code));
}

function mbps(v) { return v === null || v === undefined ? "—" : num(Math.round(v * 10) / 10) + " Mbit/s"; }
function ms(v) { return v === null || v === undefined ? "—" : num(Math.round(v)) + " ms"; }

function dl(pairs) {
  return h("dl", { class: "facts" }, pairs.filter((p) => p).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function duration(s) {
  if (s === null || s === undefined) { return "—"; }
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600);
  return d ? t("ago.days", { n: d }) + " " + t("ago.hours", { n: hr }) : t("ago.hours", { n: hr });
}

// The WAN's use: the rates, each as a share of the contracted speed (what the school pays
// for) when known, and of the port's speed.
function wanUse(r, contracted) {
  if ((r.rx_mbps === null || r.rx_mbps === undefined) && (r.tx_mbps === null || r.tx_mbps === undefined)) { return r.wan_if || "—"; }
  const c = contracted || {};
  const share = (v, of) => (v === null || v === undefined || !of ? null : pct(100 * v / of));
  const side = (arrow, v, of, port) => {
    const parts = [];
    const s = share(v, of);
    if (s) { parts.push(t("conn.of_contract", { pct: s })); }
    if (port !== null && port !== undefined) { parts.push(t("conn.of_port", { pct: pct(port), port: r.wan_mbps ? mbps(r.wan_mbps) : "—" })); }
    return arrow + " " + mbps(v) + (parts.length ? " (" + parts.join(", ") + ")" : "");
  };
  return h("span", { id: "conn-wan" }, side("↓", r.rx_mbps, c.down_mbps, r.rx_util_pct), h("br"), side("↑", r.tx_mbps, c.up_mbps, r.tx_util_pct));
}

// The router's state: up or not answering, uptime, WAN use, model; ``more``: further rows
// (the device page's gateway and SNMP), in the same list so they line up.
export function routerFacts(r, contracted, more) {
  if (!r) { return h("p", { class: "muted", id: "conn-router" }, t("conn.router_none")); }
  return h("div", { id: "conn-router" }, dl([
    [t("conn.router"), h("span", { class: "st " + (r.up ? "online" : "offline"), dataset: { up: String(r.up) } },
      t(r.up ? "conn.router_up" : "conn.router_down"))],
    [t("conn.uptime"), [duration(r.uptime_s), r.rebooted ? h("small", { class: "muted" }, " (" + t("conn.rebooted") + ")") : null]],
    [t("conn.wan"), wanUse(r, contracted)],
    [t("conn.model"), [r.model || r.descr || "—", r.firmware ? " · " + t("conn.firmware") + " " + r.firmware : ""]],
    ...(more || []),
  ]));
}

function leaseFacts(k) {
  const l = k.lease || {};
  const b = k.budget;
  return [
    [t("conn.lease"), l.held ? t("conn.lease_held", { device: l.holder, time: localTime(l.expires_local) })
      : (l.next_planned ? t("conn.next_test", { time: localTime(l.next_planned_local) }) : t("conn.no_plan"))],
    b ? [t("conn.budget", { month: b.month || "—" }), t("conn.budget_used", { used: dataBytes(b.used), limit: dataBytes(b.limit), n: num(b.tests) })] : null,
  ];
}

function lastTest(lt) {
  if (!lt) { return "—"; }
  if (!lt.ok) { return [localTime(lt.ts_local), " · ", h("span", { class: "bad" }, t("conn.failed")), lt.reason ? " (" + (lt.reason_label || lt.reason) + ")" : ""]; }
  return [localTime(lt.ts_local), " · ↓ ", mbps(lt.down_mbps), " · ↑ ", mbps(lt.up_mbps), " · ", ms(lt.ping_ms)];
}

function testsTable(tests) {
  const rows = tests.slice().reverse().slice(0, 50).map((x) => {
    const state = x.refused ? "refused" : (x.ok ? "ok" : "failed");
    const td = (key, cls, ...c) => h("td", { class: cls || null, "data-label": t(key) }, ...c);
    return h("tr", { class: state === "ok" ? "" : "muted", dataset: { state: state } },
      td("conn.col_time", null, localTime(x.ts_local)),
      td("conn.col_result", null, h("span", { class: "st " + (state === "ok" ? "online" : state === "failed" ? "offline" : "unknown") },
        t("conn." + state)), x.reason ? " " + (x.reason_label || x.reason) : "",
        x.refused ? h("small", { class: "why", dataset: { refused: x.refused } }, " (" + (x.refused_label || x.refused) + ")") : null),
      td("conn.col_down", "num", mbps(x.down_mbps)), td("conn.col_up", "num", mbps(x.up_mbps)),
      td("conn.col_ping", "num", ms(x.ping_ms)), td("conn.col_data", "num", dataBytes(x.bytes)),
      td("conn.col_device", null, link("/devices/" + encodeURIComponent(x.device), x.device),
        x.wired === null || x.wired === undefined ? "" : " · " + t(x.wired ? "conn.wired" : "conn.wifi")));
  });
  if (!rows.length) { rows.push(h("tr", { class: "none" }, h("td", { colspan: 7 }, t("conn.tests_none")))); }
  return h("div", { class: "scroll" }, h("table", { id: "conn-tests", class: "list stack" },
    h("thead", {}, h("tr", {}, ["conn.col_time", "conn.col_result", "conn.col_down", "conn.col_up", "conn.col_ping",
      "conn.col_data", "conn.col_device"].map((k, i) => h("th", { class: i >= 2 && i <= 5 ? "num" : null }, t(k))))),
    h("tbody", {}, rows)));
}

function charts(hist, k) {
  const counted = hist.tests.filter((x) => x.ok && !x.refused);
  const at = (f) => counted.filter((x) => f(x) !== null && f(x) !== undefined).map((x) => [Date.parse(x.ts) / 1000, f(x)]);
  const xs = counted.map((x) => Date.parse(x.ts) / 1000);
  const th = hist.thresholds || (k && k.thresholds) || {};
  const good = th.required_down_mbps || th.good_down_mbps || 20, bad = th.bad_down_mbps || 1;
  const line = (v) => xs.map((x) => [x, v]);
  const from = Date.parse(hist.from) / 1000, to = Date.parse(hist.to) / 1000;
  const speed = [{ label: t("conn.down"), points: at((x) => x.down_mbps) }, { label: t("conn.up"), points: at((x) => x.up_mbps) }];
  const contract = hist.contracted && hist.contracted.down_mbps;
  if (contract) { speed.push({ label: t("conn.line_contract"), points: line(contract) }); }
  speed.push({ label: t("conn.line_good", { n: num(good) }), points: line(good) }, { label: t("conn.line_bad", { n: num(bad) }), points: line(bad) });
  const days = (hist.school_days || []).filter((d) => d.uptime_pct !== null && d.uptime_pct !== undefined)
    .map((d) => [Date.parse(d.day + "T12:00:00+07:00") / 1000, d.uptime_pct]);
  // the international target per local day (probe hours weighted by their probes): a cut
  // undersea cable shows here while the domestic line stays at 100 %
  const intl = {};
  for (const hr of hist.hours || []) {
    if (hr.intl_ok_pct === null || hr.intl_ok_pct === undefined) { continue; }
    const day = Math.floor((Date.parse(hr.hour) / 1000 + 7 * 3600) / 86400);
    const e = intl[day] || (intl[day] = [0, 0]);
    e[0] += hr.intl_ok_pct * (hr.n || 1); e[1] += hr.n || 1;
  }
  const intlDays = Object.keys(intl).map(Number).sort((a, b) => a - b)
    .map((d) => [d * 86400 - 7 * 3600 + 12 * 3600, Math.round(10 * intl[d][0] / intl[d][1]) / 10]);
  return h("div", { class: "conn-charts" },
    timeChart("chart-conn-speed", t("conn.chart_speed"), "Mbit/s", speed, { xRange: [from, to], height: 200 }),
    timeChart("chart-conn-ping", t("conn.chart_ping"), "ms", [{ label: t("conn.col_ping"), points: at((x) => x.ping_ms) }], { xRange: [from, to] }),
    timeChart("chart-conn-uptime", t("conn.chart_uptime"), "%", [{ label: t("conn.line_domestic"), points: days },
      { label: t("conn.line_intl"), points: intlDays }], { xRange: [from, to], yRange: [0, 100] }));
}

// Seconds between looks at the school while a test asked for now runs.
const POLL_S = 3;

// "Đo ngay / Test now" for the roles that may (deps.RIGHTS "speedtest"): disabled with the
// reason while a lease is held; once pressed, it says which PC tests and for how long, looks
// at the school every few seconds until the lease is given back (the result is in) or its
// time is up, and then draws the section again.
function testNow(s, k, box) {
  if (!may("speedtest")) { return null; }
  const l = k.lease || {};
  const b = h("button", { type: "button", id: "conn-test-now", class: "primary" }, t("conn.test_now"));
  const msg = h("span", { class: "muted", id: "conn-test-msg", role: "status" });
  if (l.held) {
    b.disabled = true;
    msg.textContent = t("conn.test_now_held", { device: l.holder, time: localTime(l.expires_local) });
  }
  b.addEventListener("click", async () => {
    b.disabled = true;
    msg.textContent = "";
    let got;
    try {
      got = await api("/api/v1/schools/" + encodeURIComponent(s.code) + "/speedtest", { method: "POST" });
    } catch (e) {
      msg.textContent = e.message;
      b.disabled = Boolean(e.body && e.body.error === "speedtest_held");
      return;
    }
    const lease = got.lease;
    msg.textContent = t("conn.testing", { device: lease.device_name || lease.device, n: got.minutes });
    box.dataset.testing = lease.id;
    const until = Date.parse(lease.expires);
    for (;;) {
      await new Promise((r) => setTimeout(r, POLL_S * 1000));
      if (!document.body.contains(box)) { return; }  // the user went to another page
      let fresh;
      try { fresh = await api("/api/v1/schools/" + encodeURIComponent(s.code)); } catch (e) { continue; }
      const fl = (fresh.connectivity && fresh.connectivity.lease) || {};
      const released = !(fl.held && fl.id === lease.id);
      // given back before its time: the holder's result arrived (after it: it expired)
      const done = released && Date.now() <= until;
      if (released || Date.now() > until) {
        const next = schoolConnectivity(fresh);
        box.replaceWith(next);
        const note = next.querySelector("#conn-test-msg");
        if (note) { note.textContent = t(done ? "conn.test_done" : "conn.test_late"); }
        next.dataset.tested = lease.id;
        await next.show(7);
        return;
      }
    }
  });
  return h("p", { id: "conn-test" }, b, " ", msg);
}

// The school page's section; the charts and tests come from the history route, 7 or 30 days.
export function schoolConnectivity(s) {
  const k = s.connectivity || {};
  const box = h("section", { class: "conn", id: "connectivity" }, h("h3", {}, t("conn.title"), " ", connBadge(k)));
  const reasons = k.reasons || [];
  if (reasons.length) {
    box.appendChild(h("ul", { class: "reasons", id: "conn-reasons" }, reasons.map((r) => h("li", { dataset: { reason: r.code } }, r.text))));
  }
  // what the school-week passed: why a Đạt school is Đạt (the others: what did pass)
  const ev = k.evidence || [];
  if (ev.length) {
    box.appendChild(h("div", { id: "conn-evidence" }, h("p", { class: "muted" }, t(reasons.length ? "conn.evidence_some" : "conn.evidence")),
      h("ul", { class: "reasons passed" }, ev.map((e) => h("li", { dataset: { evidence: e.code } }, "✓ " + e.text)))));
  }
  if (k.evaluated_at) {
    box.appendChild(h("p", { class: "muted", id: "conn-since" }, t("conn.since", { time: localTime(k.since_local) }), " · ",
      t("conn.evaluated", { time: localTime(k.evaluated_at_local) })));
  }
  const c = k.contracted || {};
  box.appendChild(h("div", { class: "two" },
    dl([[t("conn.contracted"), c.down_mbps ? mbps(c.down_mbps) + " / " + mbps(c.up_mbps) : "—"],
      [t("conn.last_test"), h("span", { id: "conn-last" }, lastTest(k.last_test))], ...leaseFacts(k)]),
    routerFacts(k.router, c)));
  const now = testNow(s, k, box);
  if (now) { box.appendChild(now); }
  const buttons = h("p", { class: "ranges", id: "conn-ranges" });
  const area = h("div", { id: "conn-history" });
  box.append(buttons, area);
  let seq = 0;
  async function show(days) {
    const mine = ++seq;
    settled(false);
    buttons.textContent = "";
    RANGES.forEach((d) => {
      const b = h("button", { type: "button", class: d === days ? "on" : "", dataset: { days: String(d) }, "aria-pressed": String(d === days) }, t("conn.days", { n: d }));
      b.addEventListener("click", () => show(d));
      buttons.append(b, " ");
    });
    let hist;
    try { hist = await api("/api/v1/schools/" + encodeURIComponent(s.code) + "/connectivity" + qs({ days: days })); } catch (e) {
      if (mine === seq) { area.textContent = ""; area.appendChild(h("p", { class: "error" }, e.message)); settled(true); }
      return;
    }
    if (mine !== seq) { return; }
    area.textContent = "";
    area.append(charts(hist, k), h("h4", {}, t("conn.tests")), testsTable(hist.tests));
    settled(true);
  }
  box.show = show;
  return box;
}

// A router's device page: its router fields (gateway and SNMP in the same list) and
// interfaces; ``contracted``: the school's contracted speeds (the WAN's share of them).
export function deviceRouter(d, contracted) {
  const r = d.router;
  if (!r) { return null; }
  const box = h("section", { class: "conn", id: "router-fields" }, h("h3", {}, t("conn.router_fields")),
    r.ts_local ? h("p", { class: "muted", id: "router-latest" }, t("conn.router_latest", { time: localTime(r.ts_local) })) : null,
    // a poll that reached neither ping nor SNMP names no model: the registry's is the last known
    routerFacts(r.model || r.descr || !d.os ? r : Object.assign({}, r, { model: d.os }), contracted, [
      [t("conn.gateway"), r.gw_ok ? ms(r.gw_ms) : h("span", { class: "bad" }, t("conn.router_down"))],
      [t("conn.snmp"), r.snmp_ok ? t("conn.yes") : h("span", { dataset: { snmpErr: r.snmp_err || "" } }, r.snmp_err_label || r.snmp_err || t("conn.no"))],
    ]));
  const ifs = r.interfaces || [];
  if (ifs.length) {
    box.appendChild(h("div", { class: "scroll" }, h("table", { id: "router-ifs", class: "list" },
      h("thead", {}, h("tr", {}, h("th", {}, t("conn.if_name")), h("th", {}, t("col.status")), h("th", { class: "num" }, t("conn.if_speed")))),
      h("tbody", {}, ifs.map((i) => h("tr", {}, h("td", {}, i.name || "—"),
        h("td", {}, h("span", { class: "st " + (i.up ? "online" : "offline") }, t(i.up ? "conn.router_up" : "conn.router_down"))),
        h("td", { class: "num" }, i.mbps === null || i.mbps === undefined ? "—" : num(i.mbps) + " Mbit/s")))))));
  }
  return box;
}

// --- the /connectivity page --------------------------------------------------------------

function groupTable(id, groups, keys) {
  const name = (g) => keys.map((key) => (g[key] === null || g[key] === undefined ? t("conn.unknown_isp")
    : key === "link_type" ? t("link." + g[key]) : g[key])).join(" · ");
  const listLink = (g, extra, text) => {
    const params = Object.assign({}, extra);
    for (const key of keys) { if (g[key] !== null && g[key] !== undefined) { params[key] = g[key]; } }
    return keys.every((key) => g[key] !== null && g[key] !== undefined) ? link("/schools" + qs(params), text) : text;
  };
  const rows = groups.map((g) => {
    const td = (key, cls, ...c) => h("td", { class: cls || null, "data-label": t(key) }, ...c);
    return h("tr", { dataset: { group: name(g) } },
      td(keys.length > 1 || keys[0] === "isp" ? "conn.col_isp" : "conn.col_link", "name", name(g)),
      td("conn.col_schools", "num", listLink(g, {}, num(g.schools))),
      td("conn.col_tested", "num", num(g.tested_7d)),
      td("conn.col_down_med", "num", mbps(g.down_mbps)), td("conn.col_up_med", "num", mbps(g.up_mbps)),
      td("conn.col_meets", "num", listLink(g, { connectivity: "meets" }, pct(g.meets_pct))),
      td("conn.col_ping_med", "num", ms(g.ping_ms)), td("conn.col_uptime_med", "num", pct(g.uptime_pct)),
      td("conn.col_below_contract", "num", pct(g.below_contract_pct)));
  });
  if (!rows.length) { rows.push(h("tr", { class: "none" }, h("td", { colspan: 9 }, t("conn.isps_none")))); }
  return h("div", { class: "scroll" }, h("table", { id: id, class: "list stack" },
    h("thead", {}, h("tr", {}, h("th", {}, t(keys[0] === "isp" ? "conn.col_isp" : "conn.col_link")),
      ["conn.col_schools", "conn.col_tested", "conn.col_down_med", "conn.col_up_med", "conn.col_meets", "conn.col_ping_med",
        "conn.col_uptime_med", "conn.col_below_contract"].map((k) => h("th", { class: "num" }, t(k))))),
    h("tbody", {}, rows)));
}

export async function render(root, gen, args, params) {
  document.title = t("nav.connectivity") + " — schoolmon";
  const area = params.get("area") || "";
  const body = await api("/api/v1/connectivity/isps" + qs({ area: area }));
  if (!current(gen)) { return; }
  root.textContent = "";
  root.appendChild(h("h2", { id: "page-title" }, t("conn.page_title")));
  if (!body.evaluated) { root.appendChild(h("p", { class: "note" }, t("conn.not_evaluated"))); }
  const by = body.by_status || {};
  root.appendChild(h("h3", {}, t("conn.by_status")));
  root.appendChild(h("section", { class: "cards", id: "cards-conn" },
    h("div", { class: "card offline below" }, h("div", { class: "v" }, link("/schools" + qs({ baseline: "connectivity", area: area }),
      num((by.below || 0) + (by.improve || 0)))), h("div", { class: "k" }, t("card.below_connectivity"))),
    CONN_STATUSES.map((st) => h("div", { class: "card conn " + st, dataset: { conn: st } },
      h("div", { class: "v" }, link("/schools" + qs({ connectivity: st, area: area }), num(by[st] || 0))),
      h("div", { class: "k" }, t("conn_status." + st))))));
  root.appendChild(h("h3", {}, t("conn.isps")));
  root.appendChild(groupTable("isps", body.by_isp || [], ["isp"]));
  root.appendChild(h("h3", {}, t("conn.link_types")));
  root.appendChild(groupTable("link-types", body.by_link_type || [], ["link_type"]));
}
