// Administrators' pages: users (/users) and the audit log (/audit).
import { api, codes, dash, h, localTime, pager, qs, session, t } from "../core.js";
import { current, go, rewrite, settled } from "../nav.js";



// On a phone the rows become blocks (style.css, table.stack): each cell says its column,
// the user's name comes first, an empty cell is left out.
function table(id, heads, rows, emptyKey) {
  if (!rows.length) { rows = [h("tr", { class: "none" }, h("td", { colspan: heads.length }, t(emptyKey)))]; }
  for (const row of rows) {
    Array.from(row.children).forEach((td, i) => {
      if (heads[i] && td.textContent.trim()) { td.setAttribute("data-label", t(heads[i])); }
      else if (heads[i]) { td.classList.add("empty"); }  // left out on a phone
      if (heads[i] === "col.user" && id === "users") { td.classList.add("name"); }
    });
  }
  return h("div", { class: "scroll" }, h("table", { id: id, class: "list stack" },
    h("thead", {}, h("tr", {}, heads.map((k) => h("th", {}, t(k))))), h("tbody", {}, rows)));
}

function disableButton(u) {
  const b = h("button", { type: "button", class: "disable", dataset: { user: u.name } }, t("users.disable"));
  b.addEventListener("click", async () => {
    if (!window.confirm(t("users.disable_confirm", { name: u.name }))) { return; }
    b.disabled = true;
    try {
      await api("/api/v1/users/" + encodeURIComponent(u.name) + "/disable", { method: "POST" });
      go("/users", true);
    } catch (e) { b.disabled = false; b.title = e.message; }
  });
  return b;
}

export async function renderUsers(root, gen) {
  const r = await api("/api/v1/users");
  if (!current(gen)) { return; }
  document.title = t("nav.users") + " — schoolmon";
  const users = r.items || [];
  root.textContent = "";
  root.appendChild(h("h2", { id: "page-title" }, t("nav.users")));
  root.appendChild(table("users", ["col.status", "col.user", "users.role", "col.units", "users.created", "col.actions"],
    users.map((u) => h("tr", {},
      h("td", {}, h("span", { class: "st " + (u.disabled ? "offline" : "online") }, u.disabled ? t("users.disabled") : t("users.active"))),
      h("td", {}, u.name),
      h("td", {}, u.role_label || t("role." + u.role)),
      h("td", {}, (u.units || []).join(", ") || t("users.all_units")),
      h("td", {}, localTime(u.created_at_local)),
      h("td", {}, u.disabled || (session.user && u.name === session.user.name) ? "" : disableButton(u)))), "users.none"));
  root.appendChild(addUserForm());
  root.appendChild(h("p", { class: "muted" }, t("users.cli_hint")));
}

// The administrator adds a user here (POST /api/v1/users); units are area or school codes,
// for area officers and school technicians only (the API says which are unknown).
function addUserForm() {
  const field = (key, input) => h("label", {}, t(key), input);
  const name = h("input", { id: "nu-name", name: "name", required: true, maxlength: 64, autocomplete: "off",
    pattern: "[A-Za-z0-9._@\\-]+", title: t("users.name_rule") });
  const role = h("select", { id: "nu-role", name: "role" },
    codes("role.").map((c) => h("option", { value: c, selected: c === "school_tech" }, t("role." + c))));
  const password = h("input", { id: "nu-password", name: "password", type: "password", required: true,
    minlength: 10, autocomplete: "new-password", title: t("users.password_rule") });
  const units = h("input", { id: "nu-units", name: "units", placeholder: t("users.units_hint"), autocomplete: "off" });
  const unitsRow = field("col.units", units);
  const status = h("p", { id: "nu-status", role: "status", class: "muted" });
  const submit = h("button", { type: "submit", id: "nu-submit" }, t("users.add"));
  const scoped = () => role.value === "area_officer" || role.value === "school_tech";
  const sync = () => { unitsRow.hidden = !scoped(); units.required = scoped(); };
  role.addEventListener("change", sync);
  const form = h("form", { id: "add-user", class: "filters" },
    h("h3", {}, t("users.add_title")), field("col.user", name), field("users.role", role),
    field("users.password", password), unitsRow, submit, status);
  sync();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    status.textContent = "";
    const body = { name: name.value.trim(), role: role.value, password: password.value,
      units: scoped() ? units.value.split(/[,;\s]+/).filter(Boolean) : [] };
    try {
      await api("/api/v1/users", { method: "POST", body: body });
      go("/users", true);
    } catch (e) {
      status.className = "error";
      status.textContent = e.message;
      submit.disabled = false;
    }
  });
  return form;
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
  const select = h("select", { id: "f-action", name: "action" }, h("option", { value: "" }, t("filter.all")),
    codes("audit_action.").map((c) => h("option", { value: c, selected: c === state.action }, t("audit_action." + c))));
  const form = h("form", { id: "filters", class: "filters" }, h("label", {}, t("audit.action"), select));
  const out = h("div", { id: "audit-list" });
  const info = h("p", { class: "pager", id: "pageinfo" });
  root.append(form, out, info);
  let seq = 0;  // a later filter's answer wins
  async function refresh() {
    const mine = ++seq;
    settled(false);
    rewrite("/audit" + qs(state));
    const r = await api("/api/v1/audit" + qs(Object.assign({}, state, { per_page: 100 })));
    if (mine !== seq || !current(gen)) { return; }
    out.textContent = "";
    out.appendChild(table("audit", ["audit.at", "col.user", "audit.action", "audit.target", "audit.detail"],
      (r.items || []).map((e) => h("tr", {},
        h("td", {}, localTime(e.ts_local)),
        h("td", {}, dash(e.actor)),
        h("td", {}, e.action_label || e.action),
        h("td", {}, dash(e.target)),
        h("td", {}, detail(e.detail)))), "audit.none"));
    pager(info, r, "pager.entries", (n) => { state.page = String(n); refresh().catch(() => settled(true)); });
    settled(true);
  }
  form.addEventListener("change", () => {
    state.action = select.value; state.page = "";
    refresh().catch(() => settled(true));  // unreachable: the banner says so
  });
  await refresh();
}
