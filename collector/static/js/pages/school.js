// The school page (/schools/{code}): registry data and contacts, the router called out on
// its own ("mất kết nối Internet/router" is not "một máy tắt"), every device with role, room,
// status, offline since, last seen, OS, ATTT, CPU/RAM/disk, a 7-day chart of devices online,
// the ATTT checklist (attt.js), and "approve all pending" for the roles that may.
import { api, dash, h, link, localTime, may, num, pct, statusBadge, t, unitName } from "../core.js";
import { current, go } from "../nav.js";
import { timeChart } from "../chart.js";
import { areaSlug } from "./overview.js";
import { atttBadge, deviceCell, schoolAttt } from "./attt.js";
import { connBadge, schoolConnectivity } from "./connectivity.js";
import { openAlerts } from "./alerts.js";

function dl(pairs) {
  return h("dl", { class: "facts" }, pairs.filter((p) => p).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function health(d) { return d.health || {}; }

// Devices: status first, then what identifies the machine; on a phone each row is a block
// with the name on top and the badges under it (style.css, table.stack).
export function deviceTable(devs, id, showSchool) {
  const td = (key, cls, ...children) => h("td", { class: cls || null, "data-label": key ? t(key) : null }, ...children);
  const rows = devs.map((d) => {
    const hl = health(d);
    return h("tr", { dataset: { device: d.id } },
      td(null, "badge", statusBadge(d.status, d.status_label),
        d.state === "pending" ? [" ", statusBadge("pending", d.state_label)] : null,
        d.state === "retired" ? [" ", statusBadge("retired", d.state_label)] : null),
      td(null, "name", link("/devices/" + encodeURIComponent(d.id), d.hostname || d.id), h("br"), h("small", { class: "muted" }, d.id)),
      showSchool ? td("col.school", null, d.school ? link("/schools/" + encodeURIComponent(d.school.code), d.school.name) : "—") : null,
      td("col.role", null, dash(d.role_label || d.role)),
      td("col.room", null, dash(d.room)),
      td("col.offline_since", null, (d.status === "offline" || d.status === "off_hours") ? localTime(d.offline_since_local || d.status_since_local) : "—"),
      td("col.last_seen", null, localTime(d.last_seen_local)),
      td("col.os", null, dash(d.os)),
      td(null, "attt badge", deviceCell(d)),
      h("td", { class: "num", "data-label": "CPU" }, pct(hl.cpu_pct)),
      td("col.ram", "num", pct(hl.mem_pct)),
      td("col.disk", "num" + (hl.disk_pct >= 90 ? " bad" : ""), pct(hl.disk_pct)));
  });
  if (!rows.length) { rows.push(h("tr", { class: "none" }, h("td", { colspan: showSchool ? 12 : 11 }, t("devices.none")))); }
  return h("div", { class: "scroll" }, h("table", { id: id, class: "list stack" },
    h("thead", {}, h("tr", {},
      h("th", {}, t("col.status")), h("th", {}, t("col.device")), showSchool ? h("th", {}, t("col.school")) : null,
      h("th", {}, t("col.role")), h("th", {}, t("col.room")), h("th", {}, t("col.offline_since")),
      h("th", {}, t("col.last_seen")), h("th", {}, t("col.os")), h("th", {}, t("col.attt")), h("th", { class: "num" }, "CPU"),
      h("th", { class: "num" }, t("col.ram")), h("th", { class: "num" }, t("col.disk")))),
    h("tbody", {}, rows)));
}

// The router on its own: when it is down the school has no Internet, which is not "one PC off".
function routerBox(s) {
  const r = s.router;
  const box = h("section", { class: "router", id: "router" }, h("h3", {}, t("school.router")));
  if (!r) { box.appendChild(h("p", { class: "muted" }, t("school.no_router"))); return box; }
  const down = r.status === "offline";
  box.classList.toggle("down", down);
  box.appendChild(h("p", {}, statusBadge(r.status, r.status_label), " ",
    link("/devices/" + encodeURIComponent(r.id), r.hostname || r.id),
    down ? h("strong", { class: "bad" }, " — " + t("school.router_down", { since: localTime(r.offline_since_local || r.status_since_local) }))
      : h("span", { class: "muted" }, " · " + t("col.last_seen") + ": " + localTime(r.last_seen_local))));
  return box;
}

function contacts(s) {
  const list = s.contacts && s.contacts.length ? s.contacts
    : [{ name: s.contact_name, phone: s.contact_phone, email: s.contact_email }];
  return list.flatMap((c) => [
    [t("school.contact_name"), dash(c.name)],
    [t("school.contact_phone"), c.phone ? h("a", { href: "tel:" + c.phone }, c.phone) : "—"],
    [t("school.contact_email"), c.email ? h("a", { href: "mailto:" + c.email }, c.email) : "—"],
  ]);
}

export async function render(root, gen, args) {
  const code = args[0];
  const s = await api("/api/v1/schools/" + encodeURIComponent(code));
  if (!current(gen)) { return; }
  document.title = s.name + " — schoolmon";
  const devs = s.devices || [];
  const c = s.counts || {};
  root.textContent = "";
  const crumbs = h("nav", { class: "crumbs" }, link("/", t("nav.overview")), " › ",
    s.area ? link("/areas/" + encodeURIComponent(areaSlug(s.area)), unitName(s.area)) : null, s.area ? " › " : null, s.code);
  root.append(crumbs, h("h2", { id: "page-title" }, s.name, " ", statusBadge(s.status, s.status_label),
    " ", h("a", { href: "#attt", class: "attt-link", id: "attt-link", title: t("attt.title"),
      onclick: (ev) => { ev.preventDefault(); document.getElementById("attt").scrollIntoView(); } },
    "ATTT: ", atttBadge(s.attt)), " ", h("a", { href: "#connectivity", class: "attt-link", id: "conn-link", title: t("conn.title"),
      onclick: (ev) => { ev.preventDefault(); document.getElementById("connectivity").scrollIntoView(); } },
    t("col.connectivity") + ": ", connBadge(s.connectivity))));
  if (s.condition_label && s.condition !== "all_online") {
    root.appendChild(h("p", { class: "situation " + (s.condition || ""), id: "condition" }, s.condition_label));
  }
  const alerts = openAlerts({ school: s.code });  // its open alerts first, when any
  root.appendChild(alerts);
  const pending = devs.filter((d) => d.state === "pending").length;
  if (pending && may("approve")) {
    const b = h("button", { type: "button", id: "approve-all", class: "primary" }, t("school.approve_all", { n: pending }));
    const msg = h("span", { class: "muted", id: "approve-all-msg", role: "status" });
    b.addEventListener("click", async () => {
      if (!window.confirm(t("school.approve_all_confirm", { n: pending, school: s.name }))) { return; }
      b.disabled = true;
      try {
        await api("/api/v1/schools/" + encodeURIComponent(s.code) + "/approve", { method: "POST" });
        go(location.pathname, true);
      } catch (e) { msg.textContent = e.message; b.disabled = false; }
    });
    root.appendChild(h("p", {}, b, " ", msg));
  }
  root.appendChild(h("div", { class: "two" },
    h("section", {}, h("h3", {}, t("school.registry")), dl([
      [t("col.code"), s.code], [t("col.level"), dash(s.level_label)], [t("col.area"), unitName(s.area)],
      [t("school.address"), dash(s.address)], [t("school.students"), num(s.students)],
      [t("col.isp"), dash(s.isp)], [t("col.link_type"), s.link_type ? t("link." + s.link_type) : "—"],
      [t("school.contract"), s.contracted_down_mbps ? num(s.contracted_down_mbps) + " / " + num(s.contracted_up_mbps) + " Mbit/s" : "—"],
    ])),
    h("section", {}, h("h3", {}, t("school.contact")), dl([
      ...contacts(s),
      [t("col.devices"), t("school.counts", { total: num(c.devices), online: num(c.online), offline: num(c.offline), pending: num(c.pending) })
        + (c.off_hours ? ", " + t("school.counts_off_hours", { n: num(c.off_hours) }) : "")],
      [t("col.last_seen"), localTime(s.last_seen_local)],
    ]))));
  root.appendChild(routerBox(s));
  const conn = schoolConnectivity(s);
  root.appendChild(conn);
  const pts = ((s.online_hourly && s.online_hourly.points) || []).map((p) => [Date.parse(p.ts) / 1000, p.n]);
  root.appendChild(timeChart("chart-school-7d", t("school.chart_7d"), "",
    [{ label: t("unit.devices_heard"), points: pts }], { yRange: [0, Math.max(1, c.devices || 1)], integer: true }));
  root.appendChild(h("h3", {}, t("school.devices")));
  root.appendChild(deviceTable(devs.filter((d) => d.role !== "router"), "devices", false));
  root.appendChild(h("p", {}, link("/devices" + "?school=" + encodeURIComponent(s.code), t("school.all_devices"))));
  root.appendChild(schoolAttt(s));
  await Promise.all([conn.show(7), alerts.ready]);
}
