// The device list (/devices): filters status, role, OS, school, area, pending, offline for
// more than N days, reported within N hours, disk over N %, OS support and ATTT findings —
// "every Windows 7 PC", "disks over 90 %", "offline more than 3 days", "reported in the
// last 24 hours" (?seen_hours=24), "PCs on an OS out of support" (?os_support=unsupported),
// "PCs failing a check" (?attt=fail). The filters live in the address (bookmarkable, and
// what the overview links to); every filter of the address is shown in the form, and
// "clear the filters" drops them all.
import { api, filterSelect as select, h, link, pager, qs, t } from "../core.js";
import { current, rewrite, settled } from "../nav.js";
import { deviceTable } from "./school.js";
import { areaOptions } from "./schools.js";

const FILTERS = ["status", "role", "os", "school", "area", "state", "offline_days", "seen_hours", "disk_over", "os_support", "attt", "page"];
const OS_SUPPORT = ["unsupported", "esu", "supported", "unknown"];
const ATTT = ["fail", "unknown", "pass"];

function input(name, label, value, attrs) {
  return h("label", {}, label, h("input", Object.assign({ id: "f-" + name, name: name, value: value }, attrs || {})));
}

export async function render(root, gen, args, params) {
  const state = {};
  for (const k of FILTERS) { state[k] = params.get(k) || ""; }
  const org = await api("/api/v1/org?schools=false");
  if (!current(gen)) { return; }
  root.textContent = "";
  const title = h("h2", { id: "page-title" });
  const setTitle = () => {
    title.textContent = state.os_support === "unsupported" ? t("devices.unsupported_title")
      : state.seen_hours ? t("devices.seen_title", { n: state.seen_hours }) : t("nav.devices");
    document.title = title.textContent + " — schoolmon";
  };
  setTitle();
  root.appendChild(title);
  const form = h("form", { id: "filters", class: "filters" },
    select("status", t("col.status"), state.status, ["offline", "off_hours", "online", "unknown"].map((c) => [c, t("status." + c)])),
    select("state", t("col.state"), state.state, ["pending", "active", "retired"].map((c) => [c, t("state." + c)])),
    select("role", t("col.role"), state.role, ["lab", "office", "server", "router"].map((c) => [c, t("role_device." + c)])),
    input("os", t("col.os"), state.os, { type: "search", placeholder: "Windows 7", size: 12 }),
    input("school", t("col.school_code"), state.school, { type: "search", size: 10 }),
    select("area", t("col.area"), state.area, areaOptions(org)),
    input("offline_days", t("filter.offline_days"), state.offline_days, { type: "number", min: 0, max: 3650, size: 4 }),
    input("seen_hours", t("filter.seen_hours"), state.seen_hours, { type: "number", min: 0, max: 8760, size: 4 }),
    input("disk_over", t("filter.disk_over"), state.disk_over, { type: "number", min: 0, max: 100, size: 4 }),
    select("os_support", t("filter.os_support"), state.os_support, OS_SUPPORT.map((c) => [c, t("os_support." + c)]), "wide"),
    select("attt", t("filter.attt_device"), state.attt, ATTT.map((c) => [c, t("filter.attt_device." + c)]), "wide"),
    h("p", { class: "clear" }, link("/devices", t("filter.clear"))));
  const out = h("div", { id: "device-list" });
  const info = h("p", { class: "pager", id: "pageinfo" });
  root.append(form, out, info);
  let seq = 0;  // a later filter's answer wins

  async function refresh() {
    const mine = ++seq;
    settled(false);
    rewrite("/devices" + qs(state));
    setTitle();
    form.querySelector(".clear").hidden = !FILTERS.some((k) => k !== "page" && state[k]);
    let page;
    try {
      page = await api("/api/v1/devices" + qs(Object.assign({}, state, { per_page: 50 })));
    } catch (e) {
      if (mine === seq && current(gen)) {
        if (e.status) { out.textContent = ""; out.appendChild(h("p", { class: "error", role: "alert" }, e.message)); }
        settled(true);
      }
      return;
    }
    if (mine !== seq || !current(gen)) { return; }
    out.textContent = "";
    out.appendChild(deviceTable(page.items, "devices", true));
    pager(info, page, "pager.devices", (n) => { state.page = String(n); refresh(); });
    settled(true);
  }
  form.addEventListener("submit", (ev) => ev.preventDefault());
  form.addEventListener("change", (ev) => {
    if (ev.target.name) { state[ev.target.name] = ev.target.value.trim(); state.page = ""; refresh(); }
  });
  await refresh();
}
