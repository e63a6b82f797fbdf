// The school list (/schools, and /areas/{code} = the same list inside one area): sortable,
// filtered by status, ATTT status (?attt=below, or ?baseline=attt: every school not meeting
// the ATTT baseline), level, area, ISP and link type, searched by code or name (with or
// without diacritics, abbreviations such as "TH Kim Đồng"), with an offline-count column
// and an ATTT column. The filters live in the address, so a filtered list can be
// bookmarked and shared.
import { api, ApiError, filterSelect, h, link, localTime, num, pager, pct, qs, statusBadge, t, unitName } from "../core.js";
import { current, rewrite, settled } from "../nav.js";
import { ATTT_STATUSES, atttBadge } from "./attt.js";
import { CONN_STATUSES, connBadge } from "./connectivity.js";

const STATUSES = ["offline", "partial", "online", "off_hours", "no_devices"];
const LEVELS = ["MN", "TH", "THCS", "THPT", "GDNN-GDTX", "LIEN-CAP"];
const ISPS = ["VNPT", "Viettel", "FPT", "MobiFone"];
const LINKS = ["fiber", "adsl", "4g", "3g"];
const FILTERS = ["status", "baseline", "attt", "connectivity", "level", "area", "isp", "link_type", "q", "sort", "page"];
// The ATTT filter's "every school not meeting the baseline" (?baseline=attt)
const NOT_MEETING = "not_meeting";

// Columns: [sort key (null: not sortable), heading text key, cell, class]; the status and
// the ATTT status come first; on a phone each row is a block with the name on top and the
// badges under it (style.css, table.stack). The overview's schools needing attention add
// why each is there (``reasons``).
function columns(withReasons) {
  return [
    ["status", "col.status", (s) => statusBadge(s.status, s.status_label), "badge"],
    // "tagged": on a phone the two status badges say which is which (ATTT: …, Kết nối: …)
    ["attt", "col.attt", (s) => atttBadge(s.attt), "badge tagged"],
    ["connectivity", "col.connectivity", (s) => (s.connectivity ? connBadge(s.connectivity) : "—"), "badge tagged"],
    ["name", "col.school", (s) => h("span", {}, link("/schools/" + encodeURIComponent(s.code), s.name),
      h("br"), h("small", { class: "muted" }, s.code)), "name"],
    withReasons ? [null, "col.reason", (s) => h("ul", { class: "reasons" },
      (s.reasons || []).map((r) => h("li", { dataset: { reason: r.code } }, r.label))), "reason"] : null,
    ["area", "col.area", (s) => unitName(s.area)],
    [null, "col.level", (s) => s.level_label || s.level || "—"],
    ["offline", "col.offline_count", (s) => {
      const n = s.offline_count !== undefined ? s.offline_count : (s.devices ? s.devices.offline : 0);
      return n ? link("/devices" + qs({ school: s.code, status: "offline" }), num(n)) : "0";
    }, "num"],
    ["online_pct", "col.pct_online", (s) => s.devices && s.devices.total ? pct(s.devices.online_pct !== undefined ? s.devices.online_pct : 100 * s.devices.online / s.devices.total) : "—", "num"],
    [null, "col.devices", (s) => s.devices && s.devices.total ? link("/devices" + qs({ school: s.code }), num(s.devices.total)) : "0", "num"],
    [null, "col.last_seen", (s) => localTime(s.last_seen_local)],
  ].filter(Boolean);
}

export function schoolTable(items, id, sortState, onSort, withReasons) {
  const cols = columns(withReasons);
  const head = h("tr", { "data-label": t("sort.by") }, cols.map(([key, label, , cls]) => {
    const th = h("th", { class: (cls || "") + (key && onSort ? " sortable" : "") }, t(label));
    if (key && onSort) {
      const active = sortState && sortState.replace(/^-/, "") === key;
      const desc = active && sortState.startsWith("-");
      const b = h("button", { class: "sort" + (active ? " on" : ""), type: "button", dataset: { sort: key },
        "aria-sort": active ? (desc ? "descending" : "ascending") : "none" },
        t(label), active ? (desc ? " ▼" : " ▲") : "");
      b.addEventListener("click", () => onSort(active && !desc ? "-" + key : key));
      th.textContent = ""; th.appendChild(b);
    }
    return th;
  }));
  const rows = items.map((s) => h("tr", { dataset: { code: s.code } },
    cols.map(([, label, cell, cls]) => h("td", { class: cls || "", "data-label": t(label) }, cell(s)))));
  if (!rows.length) { rows.push(h("tr", { class: "none" }, h("td", { colspan: cols.length }, t(withReasons ? "overview.worst_none" : "schools.none")))); }
  return h("div", { class: "scroll" }, h("table", { id: id, class: "list stack" + (onSort ? " sorts" : "") },
    h("thead", {}, head), h("tbody", {}, rows)));
}

function select(id, label, value, options, cls) {
  return filterSelect(id.replace(/^f-/, ""), label, value, options, cls);
}

// The areas of the organisation tree as [the last part of the code, name] (indented by depth).
export function areaOptions(org) {
  const out = [];
  const walk = (u, depth) => {
    if (u.type !== "unit") { return; }
    if (u.level !== "province") { out.push([u.code.split("/").pop(), "\u00a0\u00a0".repeat(Math.max(0, depth - 1)) + unitName(u)]); }
    for (const c of u.children || []) { walk(c, depth + 1); }
  };
  for (const r of org.roots || []) { walk(r, 0); }
  return out;
}

export function renderArea(root, gen, args, params) {
  return render(root, gen, args, params, args[0]);
}

export async function render(root, gen, args, params, areaFromPath) {
  const state = {};
  for (const k of FILTERS) { state[k] = params.get(k) || ""; }
  if (areaFromPath) {  // the full code or its last part: the last part from here on
    areaFromPath = areaFromPath.split("/").pop();
    state.area = areaFromPath;
  }
  const org = await api("/api/v1/org?schools=false");
  if (!current(gen)) { return; }
  let areaName = null;
  const areas = areaOptions(org);
  if (areaFromPath) {
    const found = areas.find(([v]) => v === areaFromPath);
    if (!found) { throw new ApiError(404, { message: t("notfound.area") }); }
    areaName = found[1].trim();
  }
  document.title = (areaName || t("nav.schools")) + " — schoolmon";
  root.textContent = "";
  root.appendChild(h("h2", { id: "page-title" }, areaName ? t("schools.in_area", { area: areaName }) : t("nav.schools")));
  const q = h("input", { id: "f-q", name: "q", type: "search", value: state.q, placeholder: t("filter.q_hint"),
    size: t("filter.q_hint").length });
  const form = h("form", { id: "filters", class: "filters" },
    h("label", { class: "wide" }, t("filter.q"), q),
    select("f-attt", t("filter.attt"), state.attt || (state.baseline === "attt" || state.baseline === "below" ? NOT_MEETING : ""),
      [[NOT_MEETING, t("filter.attt_not_meeting")]].concat(ATTT_STATUSES.map((c) => [c, t("attt_status." + c)])), "wide"),
    select("f-connectivity", t("filter.connectivity"), state.connectivity || (state.baseline === "connectivity" ? NOT_MEETING : ""),
      [[NOT_MEETING, t("filter.conn_not_meeting")]].concat(CONN_STATUSES.map((c) => [c, t("conn_status." + c)])), "wide"),
    select("f-status", t("col.status"), state.status, STATUSES.map((c) => [c, t("status." + c)])),
    select("f-level", t("col.level"), state.level, LEVELS.map((c) => [c, t("level." + c)])),
    areaFromPath ? null : select("f-area", t("col.area"), state.area, areas),
    select("f-isp", t("col.isp"), state.isp, ISPS.map((c) => [c, c])),
    select("f-link_type", t("col.link_type"), state.link_type, LINKS.map((c) => [c, t("link." + c)])),
    h("p", { class: "clear" }, link(areaFromPath ? "/areas/" + encodeURIComponent(areaFromPath) : "/schools", t("filter.clear"))));
  const info = h("p", { class: "pager", id: "pageinfo" });
  const out = h("div", { id: "school-list" });
  root.append(form, out, info);
  let seq = 0;  // a later filter's answer wins over an earlier one still on its way

  async function refresh() {
    const mine = ++seq;
    settled(false);
    const params2 = Object.assign({}, state, { per_page: 50 });
    const address = (areaFromPath ? "/areas/" + encodeURIComponent(areaFromPath) : "/schools") +
      qs(Object.assign({}, state, { area: areaFromPath ? "" : state.area }));
    rewrite(address);
    form.querySelector(".clear").hidden = !FILTERS.some((k) => k !== "page" && k !== "sort" && state[k] && !(k === "area" && areaFromPath));
    let page;
    try {
      page = await api("/api/v1/schools" + qs(params2));
    } catch (e) {
      if (mine === seq && current(gen)) {
        if (e.status) { out.textContent = ""; out.appendChild(h("p", { class: "error" }, e.message)); }
        settled(true);
      }
      return;
    }
    if (mine !== seq || !current(gen)) { return; }
    out.textContent = "";
    out.appendChild(schoolTable(page.items, "schools", state.sort || "", (key) => { state.sort = key; state.page = ""; refresh(); }));
    pager(info, page, "pager.schools", (n) => { state.page = String(n); refresh(); });
    settled(true);
  }
  form.addEventListener("submit", (ev) => ev.preventDefault());
  form.addEventListener("change", (ev) => {
    if (ev.target.name === "attt") {  // one select for two parameters: ?baseline=attt or ?attt=STATUS
      const v = ev.target.value;
      state.baseline = v === NOT_MEETING ? "attt" : (state.baseline === "attt" ? "" : state.baseline);
      state.attt = v === NOT_MEETING ? "" : v;
      state.page = ""; refresh();
    } else if (ev.target.name === "connectivity") {  // ?baseline=connectivity or ?connectivity=STATUS
      const v = ev.target.value;
      state.baseline = v === NOT_MEETING ? "connectivity" : (state.baseline === "connectivity" ? "" : state.baseline);
      state.connectivity = v === NOT_MEETING ? "" : v;
      state.page = ""; refresh();
    } else if (ev.target.name && ev.target.name !== "q") { state[ev.target.name] = ev.target.value; state.page = ""; refresh(); }
  });
  q.addEventListener("input", () => { state.q = q.value.trim(); state.page = ""; refresh(); });
  await refresh();
}
