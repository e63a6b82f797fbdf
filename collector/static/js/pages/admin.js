// Administrators' pages: users (/users) and the audit log (/audit).
import { api, dash, h, localTime, num, qs, t } from "../core.js";
import { current, rewrite, settled } from "../nav.js";

function table(id, heads, rows, emptyKey) {
  if (!rows.length) { rows = [h("tr", {}, h("td", { colspan: heads.length }, t(emptyKey)))]; }
  return h("div", { class: "scroll" }, h("table", { id: id, class: "list" },
    h("thead", {}, h("tr", {}, heads.map((k) => h("th", {}, t(k))))), h("tbody", {}, rows)));
}

export async function renderUsers(root, gen) {
  const r = await api("/api/v1/users");
  if (!current(gen)) { return; }
  document.title = t("nav.users") + " — schoolmon";
  const users = r.items || [];
  root.textContent = "";
  root.appendChild(h("h2", { id: "page-title" }, t("nav.users")));
  root.appendChild(table("users", ["col.status", "col.user", "col.role", "col.units", "users.created"],
    users.map((u) => h("tr", {},
      h("td", {}, h("span", { class: "st " + (u.disabled ? "offline" : "online") }, u.disabled ? t("users.disabled") : t("users.active"))),
      h("td", {}, u.name),
      h("td", {}, u.role_label || t("role." + u.role)),
      h("td", {}, (u.units || []).join(", ") || t("users.all_units")),
      h("td", {}, localTime(u.created_at_local)))), "users.none"));
  root.appendChild(h("p", { class: "muted" }, t("users.cli_hint")));
}

// An audit entry's detail ({"role": "so_viewer", "units": [...]}) as "role: so_viewer · units: ...".
function detail(d) {
  if (d === null || d === undefined) { return "—"; }
  if (typeof d !== "object") { return String(d); }
  const parts = Object.entries(d).map(([k, v]) => k + ": " + (Array.isArray(v) ? v.join(", ") || "—" : (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v))));
  return parts.length ? parts.join(" · ") : "—";
}

export async function renderAudit(root, gen, args, params) {
  const state = { action: params.get("action") || "", actor: params.get("actor") || "", page: params.get("page") || "" };
  document.title = t("nav.audit") + " — schoolmon";
  root.textContent = "";
  root.appendChild(h("h2", { id: "page-title" }, t("nav.audit")));
  const out = h("div", { id: "audit-list" });
  const info = h("p", { class: "pager", id: "pageinfo" });
  root.append(out, info);
  async function refresh() {
    settled(false);
    rewrite("/audit" + qs(state));
    const r = await api("/api/v1/audit" + qs(Object.assign({}, state, { per_page: 100 })));
    if (!current(gen)) { return; }
    const items = r.items || [];
    out.textContent = "";
    out.appendChild(table("audit", ["audit.at", "col.user", "audit.action", "audit.target", "audit.detail"],
      items.map((e) => h("tr", {},
        h("td", {}, localTime(e.ts_local)),
        h("td", {}, dash(e.actor)),
        h("td", {}, e.action_label || e.action),
        h("td", {}, dash(e.target)),
        h("td", {}, detail(e.detail)))), "audit.none"));
    info.textContent = r.total !== undefined ? t("pager.entries", { total: num(r.total) }) : "";
    settled(true);
  }
  await refresh();
}
