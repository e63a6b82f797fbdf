// The overview (/): schools and devices by status, the per-area table, the worst schools,
// devices heard in 24 h and the 30-day trend of devices online. Every number that counts
// something links to the list it counts.
import { api, h, link, localTime, num, pct, qs, t } from "../core.js";
import { current } from "../nav.js";
import { timeChart } from "../chart.js";
import { schoolTable } from "./schools.js";

function card(value, label, href, cls) {
  const v = (value === null || value === undefined) ? "—" : num(value);
  return h("div", { class: "card " + (cls || "") },
    h("div", { class: "v" }, href && value !== null && value !== undefined ? link(href, v) : v),
    h("div", { class: "k" }, label));
}

// The last part of an area's code ("lao-cai/huyen-bat-xat" → "huyen-bat-xat"): the API
// takes either, and the short one makes a readable address (/areas/huyen-bat-xat).
export function areaSlug(area) {
  const code = area.code || String(area.id);
  return code.split("/").pop();
}

function areaUnits(org) {
  const out = [];
  const walk = (u) => {
    if (u.type !== "unit") { return; }
    if (u.level !== "province") { out.push(u); }
    for (const c of u.children || []) { walk(c); }
  };
  for (const r of org.roots || []) { walk(r); }
  return out;
}

function areaTable(org) {
  const rows = areaUnits(org).map((u) => {
    const c = u.counts || {};
    const slug = areaSlug(u);
    const offline = c.schools_offline || 0;
    return h("tr", {},
      h("td", {}, link("/areas/" + encodeURIComponent(slug), u.name)),
      h("td", { class: "num" }, link("/areas/" + encodeURIComponent(slug), num(c.schools))),
      h("td", { class: "num" }, c.devices ? pct(100 * (c.online || 0) / c.devices) : "—"),
      h("td", { class: "num" + (offline ? " bad" : "") },
        link("/areas/" + encodeURIComponent(slug) + qs({ status: "offline" }), num(offline))),
      h("td", { class: "num" },
        link("/areas/" + encodeURIComponent(slug) + qs({ status: "partial" }), num(c.schools_partial || 0))),
      h("td", { class: "num" },
        link("/devices" + qs({ area: slug, status: "offline" }), num(c.offline || 0))));
  });
  return h("div", { class: "scroll" }, h("table", { id: "areas" },
    h("thead", {}, h("tr", {},
      h("th", {}, t("col.area")), h("th", { class: "num" }, t("col.schools")),
      h("th", { class: "num" }, t("col.pct_online")), h("th", { class: "num" }, t("col.schools_offline")),
      h("th", { class: "num" }, t("col.schools_partial")), h("th", { class: "num" }, t("col.devices_offline")))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6 }, t("areas.none"))))));
}

// The 30-day trend: [{ts, online}] from the summary (or its own route when there is one).
function trendChart(trend) {
  const points = (trend || []).map((p) => [Date.parse(p.ts || p.day) / 1000, p.online !== undefined ? p.online : p.devices]);
  return timeChart("chart-trend", t("overview.trend"), t("unit.devices"), [{ label: t("status.online"), points: points }], { height: 160 });
}

export async function render(root, gen) {
  document.title = t("nav.overview") + " — schoolmon";
  const [summary, org, worst] = await Promise.all([
    api("/api/v1/summary"), api("/api/v1/org?schools=false"), api("/api/v1/schools" + qs({ per_page: 10 })),
  ]);
  const trend = summary.trend;
  if (!current(gen)) { return; }
  const s = summary.schools, d = summary.devices, b = summary.below_baseline || {};
  root.textContent = "";
  root.appendChild(h("p", { class: "muted" }, t("overview.updated", { time: localTime(summary.now_local) })));
  root.appendChild(h("h2", {}, t("overview.schools")));
  root.appendChild(h("section", { class: "cards", id: "cards-schools" },
    card(s.total, t("card.schools"), "/schools"),
    card(s.by_status.offline, t("status.offline"), "/schools?status=offline", "offline"),
    card(s.by_status.partial, t("status.partial"), "/schools?status=partial", "partial"),
    card(s.by_status.online, t("status.online"), "/schools?status=online", "online"),
    card(s.by_status.no_devices, t("status.no_devices"), "/schools?status=no_devices")));
  root.appendChild(h("h2", {}, t("overview.devices")));
  root.appendChild(h("section", { class: "cards", id: "cards-devices" },
    card(d.total, t("card.devices"), "/devices"),
    card(d.by_status.offline, t("status.offline"), "/devices?status=offline", "offline"),
    card(d.by_status.online, t("status.online"), "/devices?status=online", "online"),
    card(d.by_state.pending, t("state.pending"), "/devices?state=pending", "partial"),
    card(d.seen_24h, t("card.seen_24h"), null),
    card(b.connectivity, t("card.below_connectivity"), b.evaluated ? "/schools?baseline=below" : null),
    card(b.security, t("card.below_security"), b.evaluated ? "/schools?baseline=below" : null)));
  if (!b.evaluated) { root.appendChild(h("p", { class: "note" }, t("overview.baseline_note"))); }
  if (trend) { root.appendChild(trendChart(Array.isArray(trend) ? trend : trend.points)); }
  root.appendChild(h("h2", {}, t("overview.areas")));
  root.appendChild(areaTable(org));
  root.appendChild(h("h2", {}, t("overview.worst")));
  root.appendChild(schoolTable(worst.items, "worst"));
  root.appendChild(h("p", {}, link("/schools", t("overview.all_schools", { n: num(worst.total) }))));
}
