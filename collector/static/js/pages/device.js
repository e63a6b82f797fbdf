// The device page (/devices/{id}): inventory with its OS support, current health, the ATTT
// findings with their evidence (attt.js), charts of CPU, memory, disk,
// temperature and network for 24 h / 7 d / 30 d from the collector's rollups, message
// counts (received, lost, duplicates), status history; approve / move room / retire for the
// roles that may. ?range=7d keeps the chosen range in the address.
import { api, bytes, dash, h, link, localTime, may, num, pct, qs, statusBadge, t } from "../core.js";
import { current, go, rewrite, settled } from "../nav.js";
import { timeChart } from "../chart.js";
import { openAlerts } from "./alerts.js";
import { deviceFindings, osSupport } from "./attt.js";
import { deviceRouter } from "./connectivity.js";

const RANGES = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
// metric, y range (percentages 0–100); labels and units come with the device (series_labels)
const CHARTS = [["cpu_pct", [0, 100]], ["mem_pct", [0, 100]], ["disk_pct", [0, 100]], ["temp", null]];

function dl(pairs) {
  return h("dl", { class: "facts" }, pairs.filter((p) => p).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

async function series(id, metric, from, to) {
  const r = await api("/api/v1/devices/" + encodeURIComponent(id) + "/series" + qs({ metric: metric, from: from, to: to }));
  return r.points.map((p) => [Date.parse(p.ts) / 1000, p.mean]);
}

async function drawCharts(box, d, range, still) {
  const to = Math.floor(Date.now() / 1000);
  const from = to - RANGES[range];
  const kept = new Set(d.series_metrics || []);
  const metrics = CHARTS.map((c) => c[0]).concat(["rx", "tx"]).filter((m) => kept.has(m));
  const got = await Promise.all(metrics.map((m) => series(d.id, m, from, to).catch((e) => {
    if (e.status === 422) { return []; }  // a metric this device does not keep (a router's temperature)
    throw e;
  })));
  if (!still()) { return false; }  // a later range (or page) was asked for: it draws
  const by = Object.fromEntries(metrics.map((m, i) => [m, got[i]]));
  const labels = d.series_labels || {};
  box.textContent = "";
  for (const [m, yRange] of CHARTS) {
    if (!by[m]) { continue; }
    const l = labels[m] || { label: m, unit: "" };
    box.appendChild(timeChart("chart-" + m, l.label, l.unit, [{ label: l.label, points: by[m] }], { yRange: yRange, xRange: [from, to] }));
  }
  if (by.rx || by.tx) {  // bytes per second → kbit/s, as links are sold
    const kbit = (pts) => (pts || []).map(([x, v]) => [x, v === null ? null : Math.round(v * 8 / 100) / 10]);
    box.appendChild(timeChart("chart-net", t("chart.net"), "kbit/s",
      [{ label: t("chart.rx"), points: kbit(by.rx) }, { label: t("chart.tx"), points: kbit(by.tx) }], { xRange: [from, to] }));
  }
  return true;
}

function actions(d) {
  const out = h("p", { class: "actions", id: "device-actions" });
  const msg = h("span", { class: "muted", role: "status", id: "action-msg" });
  const act = (id, label, path, body, confirmText) => {
    const b = h("button", { type: "button", id: id, class: id === "approve" ? "primary" : "" }, label);
    b.addEventListener("click", async () => {
      if (confirmText && !window.confirm(confirmText)) { return; }
      let payload = body;
      if (typeof body === "function") { payload = body(); if (payload === null) { return; } }
      b.disabled = true;
      try {
        await api("/api/v1/devices/" + encodeURIComponent(d.id) + "/" + path, { method: "POST", body: payload });
        go(location.pathname + location.search, true);
      } catch (e) { msg.textContent = e.message; b.disabled = false; }
    });
    out.append(b, " ");
  };
  if (d.state === "pending" && may("approve")) { act("approve", t("device.approve"), "approve"); }
  if (d.state !== "retired" && may("move") && d.role !== "router") {  // a router has no room to move to
    act("move", t("device.move"), "move", () => {
      const room = window.prompt(t("device.move_prompt"), d.room || "");
      return room === null || !room.trim() ? null : { room: room.trim() };
    });
  }
  if (d.state !== "retired" && may("retire")) {
    act("retire", t("device.retire"), "retire", undefined, t("device.retire_confirm", { id: d.hostname || d.id }));
  }
  out.appendChild(msg);
  return out.childElementCount > 1 ? out : null;
}

function historyTable(events) {
  const rows = (events || []).map((e) => h("tr", {},
    h("td", {}, statusBadge(e.status, e.status_label)),
    h("td", {}, localTime(e.ts_local)),
    h("td", {}, dash(e.reason_label || e.reason))));
  if (!rows.length) { rows.push(h("tr", {}, h("td", { colspan: 3 }, t("device.no_history")))); }
  return h("div", { class: "scroll" }, h("table", { id: "history", class: "list" },
    h("thead", {}, h("tr", {}, h("th", {}, t("col.status")), h("th", {}, t("device.at")), h("th", {}, t("device.reason")))),
    h("tbody", {}, rows)));
}

// The router's WAN chart: its in/out rates from the rollups (the router family keeps its
// WAN rates as the router device's rx/tx, bytes/s) in Mbit/s as links are sold, against
// the contracted speed; and whether it answered (ping or SNMP) from its status history.
async function drawRouterCharts(box, d, contracted, range, still) {
  const to = Math.floor(Date.now() / 1000);
  const from = to - RANGES[range];
  const [rx, tx] = await Promise.all(["rx", "tx"].map((m) => series(d.id, m, from, to)));
  if (!still()) { return false; }
  const mbit = (pts) => pts.map(([x, v]) => [x, v === null ? null : Math.round(v * 8 / 1e4) / 100]);
  const wan = [{ label: t("conn.wan_in"), points: mbit(rx) }, { label: t("conn.wan_out"), points: mbit(tx) }];
  const contract = contracted && contracted.down_mbps;
  if (contract && (rx.length || tx.length)) {  // a line: a value at every x the rates have
    const xs = Array.from(new Set(rx.concat(tx).map((p) => p[0])));
    wan.push({ label: t("conn.wan_contract"), points: xs.map((x) => [x, contract]) });
  }
  // answering or not, as a step: the state in force at ``from`` (the newest change before
  // it), then each change inside the range; the history is newest first
  const changes = (d.history || []).filter((e) => e.status === "online" || e.status === "offline")
    .map((e) => [Date.parse(e.ts) / 1000, e.status === "online" ? 1 : 0]).reverse();
  const before = changes.filter((c) => c[0] <= from);
  const state = (before.length ? [[from, before[before.length - 1][1]]] : [])
    .concat(changes.filter((c) => c[0] > from && c[0] <= to));
  const steps = [];
  state.forEach(([x, v], i) => { if (i) { steps.push([x - 1, state[i - 1][1]]); } steps.push([x, v]); });
  if (state.length) { steps.push([to, state[state.length - 1][1]]); }
  box.textContent = "";
  box.append(timeChart("chart-wan", t("conn.wan_chart"), "Mbit/s", wan, { xRange: [from, to], height: 200 }),
    timeChart("chart-router-state", t("conn.router_state_chart"), t("conn.router_state_up"),
      [{ label: t("conn.router_state_chart"), points: steps }], { xRange: [from, to], yRange: [0, 1], height: 110, integer: true, joined: true }));
  return true;
}

// A router's page: what a router has — its registry entry, state, the router fields (uptime,
// WAN use against the contract and the port, gateway and SNMP, interfaces), its WAN chart,
// its history — and none of a PC's (CPU, RAM, disk, room, agent, PC charts).
async function renderRouter(root, gen, d, name, params) {
  let contracted = null;
  if (d.school) {
    try {
      const s = await api("/api/v1/schools/" + encodeURIComponent(d.school.code));
      contracted = (s.connectivity && s.connectivity.contracted) || null;
    } catch (e) { contracted = null; }  // the facts without the contract's share
    if (!current(gen)) { return; }
  }
  const msgs = d.messages || {};
  root.appendChild(h("div", { class: "two" },
    h("section", {}, h("h3", {}, t("device.inventory")), dl([
      [t("col.device"), d.id], [t("device.hostname"), dash(d.hostname)],
      [t("col.school"), d.school ? link("/schools/" + encodeURIComponent(d.school.code), d.school.name) : "—"],
      [t("col.role"), dash(d.role_label)], [t("conn.model"), dash(d.os)],
      [t("device.first_seen"), localTime(d.first_seen_local)],
    ])),
    h("section", {}, h("h3", {}, t("device.health")), dl([
      [t("col.status"), [statusBadge(d.status, d.status_label), " ", t("device.since", { time: localTime(d.status_since_local) })]],
      [t("col.last_seen"), localTime(d.last_seen_local)],
      (d.status === "offline" || d.status === "off_hours") ? [t("col.offline_since"), [localTime(d.offline_since_local || d.status_since_local),
        d.offline_reason_label ? " (" + d.offline_reason_label + ")" : ""]] : null,
      [t("device.messages"), t("device.message_counts", { received: num(msgs.received), lost: num(msgs.lost), duplicates: num(msgs.duplicates) })],
    ]))));
  const polled = deviceRouter(d, contracted);
  if (polled) {
    root.appendChild(polled);
  } else {
    root.appendChild(h("p", { class: "muted", id: "conn-router" }, t("conn.router_none")));
  }
  root.appendChild(deviceFindings(d));  // says the PC baseline does not apply to routers
  const charts = h("div", { class: "charts", id: "charts" });
  const [buttons, draw] = rangeButtons(params, gen, (r, still) => drawRouterCharts(charts, d, contracted, r, still));
  root.append(h("h3", {}, t("device.charts")), buttons, charts,
    h("p", { class: "note", id: "wan-note" }, t("conn.wan_note")));
  root.append(h("h3", {}, t("device.history")), historyTable(d.history));
  await draw();
}

// The 24 h / 7 d / 30 d buttons (?range= in the address) and the draw of the range chosen:
// ``drawFor(range, still)`` draws unless ``still()`` turned false (a later range or page).
function rangeButtons(params, gen, drawFor) {
  let range = RANGES[params.get("range")] ? params.get("range") : "24h";
  let chartSeq = 0;
  const draw = () => { const mine = ++chartSeq; return drawFor(range, () => mine === chartSeq && current(gen)); };
  const buttons = h("p", { class: "ranges", role: "group" }, Object.keys(RANGES).map((r) => {
    const b = h("button", { type: "button", id: "range-" + r, class: r === range ? "on" : "", "aria-pressed": r === range ? "true" : "false" }, t("range." + r));
    b.addEventListener("click", async () => {
      range = r;
      for (const x of buttons.querySelectorAll("button")) {
        x.classList.toggle("on", x === b); x.setAttribute("aria-pressed", x === b ? "true" : "false");
      }
      rewrite(location.pathname + (r === "24h" ? "" : qs({ range: r })));
      settled(false);
      try { await draw(); } catch (e) { /* the banner says why */ }
      if (current(gen)) { settled(true); }
    });
    return b;
  }));
  return [buttons, draw];
}

export async function render(root, gen, args, params) {
  const id = args[0];
  const d = await api("/api/v1/devices/" + encodeURIComponent(id));
  if (!current(gen)) { return; }
  // a router's host name says little ("router", "OpenWrt"): it is the school's router
  const name = d.role === "router" && d.school ? t("device.router_title", { school: d.school.name }) : (d.hostname || d.id);
  document.title = name + " — schoolmon";
  const latest = d.latest || {};
  const hp = (latest.health && latest.health.payload) || {};
  const hn = d.health || {};
  const inv = (latest.inventory && latest.inventory.payload) || {};
  const msgs = d.messages || {};
  root.textContent = "";
  root.appendChild(h("nav", { class: "crumbs" }, link("/", t("nav.overview")), " › ",
    d.school ? link("/schools/" + encodeURIComponent(d.school.code), d.school.name) : null, " › ", name));
  root.appendChild(h("h2", { id: "page-title" }, name, " ", statusBadge(d.status, d.status_label),
    d.state === "pending" || d.state === "retired" ? [" ", statusBadge(d.state, d.state_label)] : null));
  const a = actions(d);
  if (a) { root.appendChild(a); }
  const open = openAlerts({ device: d.id });  // its open alerts first, when any
  root.appendChild(open);
  await open.ready;
  if (!current(gen)) { return; }
  if (d.role === "router") { return renderRouter(root, gen, d, name, params); }
  const disk = (hp.disks || []).map((x) => x.mnt + " " + pct(x.pct)).join(", ");
  root.appendChild(h("div", { class: "two" },
    h("section", {}, h("h3", {}, t("device.inventory")), dl([
      [t("col.device"), d.id], [t("device.hostname"), dash(d.hostname)], [t("col.school"), d.school ? link("/schools/" + encodeURIComponent(d.school.code), d.school.name) : "—"],
      [t("col.role"), dash(d.role_label)], [t("col.room"), dash(d.room)], [t("col.os"), dash(d.os)],
      d.role !== "router" ? [t("attt.os_support"), osSupport(d.security)] : null,
      [t("device.cpu_model"), dash(inv.cpu_model)], [t("col.ram"), bytes(inv.ram)],
      [t("device.disks"), (inv.disks || []).map((x) => bytes(x.size) + (x.kind ? " " + x.kind.toUpperCase() : "")).join(", ") || "—"],
      [t("device.agent"), dash(d.agent)], [t("device.first_seen"), localTime(d.first_seen_local)],
    ])),
    h("section", {}, h("h3", {}, t("device.health")), dl([
      [t("col.status"), [statusBadge(d.status, d.status_label), " ", t("device.since", { time: localTime(d.status_since_local) })]],
      [t("col.last_seen"), localTime(d.last_seen_local)],
      ["CPU", pct(hn.cpu_pct)], [t("col.ram"), pct(hn.mem_pct)], [t("col.disk"), disk || pct(hn.disk_pct)],
      [t("chart.temp"), hn.temp === undefined || hn.temp === null ? "—" : num(hn.temp) + " °C"],
      (d.status === "offline" || d.status === "off_hours") ? [t("col.offline_since"), [localTime(d.offline_since_local || d.status_since_local),
        d.offline_reason_label ? " (" + d.offline_reason_label + ")" : ""]] : null,
      [t("device.messages"), t("device.message_counts", { received: num(msgs.received), lost: num(msgs.lost), duplicates: num(msgs.duplicates) })],
    ]))));
  const polled = deviceRouter(d);
  if (polled) { root.appendChild(polled); }
  root.appendChild(deviceFindings(d));
  const charts = h("div", { class: "charts", id: "charts" });
  const [buttons, draw] = rangeButtons(params, gen, (r, still) => drawCharts(charts, d, r, still));
  root.append(h("h3", {}, t("device.charts")), buttons, charts);
  root.append(h("h3", {}, t("device.history")), historyTable(d.history));
  await draw();
}
