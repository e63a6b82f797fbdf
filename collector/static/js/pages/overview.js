// The overview (/): schools and devices by status, the schools not meeting the ATTT baseline
// by status and the PCs on an OS out of support, the per-area table, the worst schools,
// devices heard in 24 h and the 30-day trend of devices online. Every number that counts
// something links to the list it counts.
import { api, capital, h, link, localTime, num, pct, qs, t } from "../core.js";
import { current } from "../nav.js";
import { timeChart } from "../chart.js";
import { schoolTable } from "./schools.js";
import { CONN_STATUSES } from "./connectivity.js";
import { overviewCards } from "./alerts.js";

// A card: a number (a link to the list it counts) over its title, which starts with a
// capital letter whether it is a card's own title or a status label ("mất kết nối").
function card(value, label, href, cls) {
  const v = (value === null || value === undefined) ? "—" : num(value);
  return h("div", { class: "card " + (cls || "") },
    h("div", { class: "v" }, href && value !== null && value !== undefined ? link(href, v) : v),
    h("div", { class: "k" }, capital(label)));
}

// The last part of an area's code ("lao-cai/huyen-bat-xat" → "huyen-bat-xat"): the API
// takes either, and the short one makes a readable address (/areas/huyen-bat-xat).
export function areaSlug(area) {
  const code = area.code || String(area.id);
  return code.split("/").pop();
}

// A list the API says counts this number ({path: "/api/v1/schools", params}) → its page;
// ``area``: the area as the pages' filters name it (the last part of its code), in place of
// the API's unit id, so the list's area filter shows which area it is.
export function pageLink(apiLink, area) {
  if (!apiLink) { return null; }
  const params = {};
  for (const [k, v] of Object.entries(apiLink.params || {})) {
    if (!k.endsWith("_label")) { params[k] = v; }
  }
  if (area && params.area !== undefined) { params.area = area; }
  return apiLink.path.replace(/^\/api\/v1/, "") + qs(params);
}

// An area's schools not meeting the ATTT baseline, when the API counts them.
function areaAttt(a) {
  const n = a.attt_below_baseline;
  return n === null || n === undefined ? null : n;
}

function areaTable(areas, connEvaluated) {
  const withAttt = areas.some((a) => areaAttt(a) !== null);
  // schools not meeting the connectivity baseline, once it is evaluated
  const withConn = Boolean(connEvaluated) && areas.some((a) => a.connectivity_below_baseline !== undefined);
  const rows = areas.map((a) => {
    const l = a.links || {};
    const slug = areaSlug(a);
    const attt = areaAttt(a);
    const td = (key, cls, ...children) => h("td", { class: cls, "data-label": t(key) }, ...children);
    return h("tr", { dataset: { area: slug } },
      td("col.area", "name", link("/areas/" + encodeURIComponent(slug), a.name)),
      td("col.schools", "num", link(pageLink(l.schools, slug), num(a.schools))),
      td("col.pct_online", "num", a.devices ? pct(a.online_pct) : "—"),
      td("col.schools_offline", "num" + (a.schools_offline ? " bad" : ""), link(pageLink(l.schools_offline, slug), num(a.schools_offline))),
      td("col.devices", "num", link(pageLink(l.devices, slug), num(a.devices))),
      td("col.devices_offline", "num" + (a.offline ? " bad" : ""), link(pageLink(l.devices_offline, slug), num(a.offline))),
      withAttt ? td("col.below_attt", "num attt" + (attt ? " bad" : ""), attt === null ? "—"
        : link(pageLink(l.schools_attt_below, slug) || "/schools" + qs({ area: slug, baseline: "attt" }), num(attt))) : null,
      withConn ? td("col.below_conn", "num conn" + (a.connectivity_below_baseline ? " bad" : ""),
        link(pageLink(l.schools_connectivity_below, slug) || "/schools" + qs({ area: slug, baseline: "connectivity" }), num(a.connectivity_below_baseline))) : null);
  });
  return h("div", { class: "scroll" }, h("table", { id: "areas", class: "list stack" },
    h("thead", {}, h("tr", {},
      h("th", {}, t("col.area")), h("th", { class: "num" }, t("col.schools")),
      h("th", { class: "num" }, t("col.pct_online")), h("th", { class: "num" }, t("col.schools_offline")),
      h("th", { class: "num" }, t("col.devices")), h("th", { class: "num" }, t("col.devices_offline")),
      withAttt ? h("th", { class: "num" }, t("col.below_attt")) : null,
      withConn ? h("th", { class: "num" }, t("col.below_conn")) : null)),
    h("tbody", {}, rows.length ? rows : h("tr", { class: "none" }, h("td", { colspan: 7 }, t("areas.none"))))));
}

// The ATTT cards: schools not meeting the baseline, each status, PCs on an unsupported OS.
function atttCards(b, unsupported) {
  const by = b.attt_by_status || {};
  const evaluated = b.security !== null && b.security !== undefined;
  const section = h("section", { class: "cards", id: "cards-attt" },
    card(b.security, t("card.below_security"), evaluated ? "/schools?baseline=attt" : null, "offline below"),
    ["below", "insufficient", "improve", "meets"].map((code) => {
      const c = card(by[code] === undefined && evaluated ? 0 : by[code], t("attt_status." + code),
        evaluated ? "/schools" + qs({ attt: code }) : null, "attt " + code);
      c.dataset.attt = code;
      return c;
    }),
    card(unsupported, t("card.unsupported_os"), "/devices?os_support=unsupported", "offline unsupported"));
  return section;
}

// The connectivity cards: schools not meeting the baseline (Cần cải thiện + Không đạt),
// then each status, each a link to the list it counts.
function connCards(b, l) {
  const by = b.connectivity_by_status || {};
  const evaluated = b.connectivity !== null && b.connectivity !== undefined;
  const links = l.connectivity_by_status || {};
  return h("section", { class: "cards", id: "cards-conn" },
    card(b.connectivity, t("card.below_connectivity"), evaluated ? "/schools?baseline=connectivity" : null, "offline below conn"),
    CONN_STATUSES.map((code) => {
      const c = card(evaluated ? (by[code] || 0) : null, t("conn_status." + code),
        evaluated ? (pageLink(links[code]) || "/schools" + qs({ connectivity: code })) : null, "conn " + code);
      c.dataset.conn = code;
      return c;
    }));
}

// The 30-day trend: devices heard per local day.
function trendChart(trend) {
  const points = ((trend && trend.points) || []).map((p) => [Date.parse(p.ts) / 1000, p.n]);
  return timeChart("chart-trend", t("overview.trend"), "", [{ label: t("unit.devices_heard"), points: points }], { height: 170, integer: true });
}

export async function render(root, gen) {
  document.title = t("nav.overview") + " — schoolmon";
  // the PCs on an OS out of support: the size of the list the card opens
  const unsupportedAsked = api("/api/v1/devices?os_support=unsupported&per_page=1")
    .then((r) => r.total, () => null);
  const o = await api("/api/v1/overview");
  const unsupported = await unsupportedAsked;
  if (!current(gen)) { return; }
  const s = o.schools, d = o.devices, b = o.below_baseline || {}, l = o.links || {};
  const bys = l.schools_by_status || {}, byd = l.devices_by_status || {}, bystate = l.devices_by_state || {};
  root.textContent = "";
  root.appendChild(h("p", { class: "muted" }, t("overview.updated", { time: localTime(o.now_local) })));
  const alerts = overviewCards(card);  // what needs a person, first
  root.appendChild(alerts);
  root.appendChild(h("h2", {}, t("overview.schools")));
  root.appendChild(h("section", { class: "cards", id: "cards-schools" },
    card(s.total, t("card.schools"), pageLink(l.schools)),
    card(s.by_status.offline, t("status.offline"), pageLink(bys.offline), "offline"),
    card(s.by_status.partial, t("status.partial"), pageLink(bys.partial), "partial"),
    card(s.by_status.online, t("status.online"), pageLink(bys.online), "online"),
    card(s.by_status.off_hours || 0, t("status.off_hours"), pageLink(bys.off_hours), "off_hours"),
    card(s.by_status.no_devices, t("status.no_devices"), pageLink(bys.no_devices))));
  root.appendChild(h("h2", {}, t("overview.devices")));
  root.appendChild(h("section", { class: "cards", id: "cards-devices" },
    card(d.total, t("card.devices"), pageLink(l.devices)),
    card(d.by_status.offline, t("status.offline"), pageLink(byd.offline), "offline"),
    card(d.by_status.online, t("status.online"), pageLink(byd.online), "online"),
    card(d.by_status.off_hours || 0, t("status.off_hours"), pageLink(byd.off_hours), "off_hours"),
    card(d.by_state.pending, t("state.pending"), pageLink(bystate.pending) || "/devices?state=pending", "partial"),
    card(d.seen_24h, t("card.seen_24h"), pageLink(l.seen_24h))));
  // the schools' Internet links: counted in schools, so a section of their own, like ATTT
  root.appendChild(h("h2", {}, t("conn.page_title")));
  root.appendChild(connCards(b, l));
  if (b.connectivity === null || b.connectivity === undefined) {
    root.appendChild(h("p", { class: "note", id: "conn-note" }, t("conn.not_evaluated")));
  }
  root.appendChild(h("h2", {}, t("overview.attt")));
  root.appendChild(atttCards(b, unsupported));
  if (b.security === null || b.security === undefined) {
    root.appendChild(h("p", { class: "note", id: "attt-note" }, t("overview.attt_not_evaluated")));
  }
  root.appendChild(trendChart(o.trend));
  root.appendChild(h("h2", {}, t("overview.areas")));
  root.appendChild(areaTable(o.areas || [], b.connectivity_evaluated));
  root.appendChild(h("h2", {}, t("overview.worst")));
  const worst = o.worst_schools || [];
  root.appendChild(schoolTable(worst, "worst", null, null, true));
  const more = (o.worst_schools_total || 0) - worst.length;
  if (more > 0) {  // the others: the lists that hold them
    root.appendChild(h("p", { id: "worst-more" }, t("overview.worst_more", { n: num(more) }), " ",
      link("/schools?sort=status", t("overview.worst_by_status")), " · ",
      link("/schools?baseline=attt&sort=attt", t("overview.worst_by_attt")), " · ",
      link("/schools?baseline=connectivity&sort=connectivity", t("overview.worst_by_conn"))));
  }
  root.appendChild(h("p", {}, link("/schools", t("overview.all_schools", { n: num(s.total) }))));
  await alerts.ready;
}
