// schoolmon pages: the router. Every page has its own address (/schools/{code},
// /devices/{id}, /areas/{code}, ...); the collector serves this same shell for each, and
// the route below draws it. Links marked data-nav change the page without a reload.
import { api, h, lang, may, on, session, setLang, t, ApiError } from "./core.js";
import { current, go, nextGeneration, setRouter, settled } from "./nav.js";
import * as admin from "./pages/admin.js";
import * as alerts from "./pages/alerts.js";
import * as connectivity from "./pages/connectivity.js";
import * as device from "./pages/device.js";
import * as devices from "./pages/devices.js";
import * as login from "./pages/login.js";
import * as overview from "./pages/overview.js";
import * as school from "./pages/school.js";
import * as schools from "./pages/schools.js";

const ROUTES = [
  [/^\/$/, overview.render, "nav.overview"],
  [/^\/schools$/, schools.render, "nav.schools"],
  [/^\/areas\/(.+)$/, schools.renderArea, "nav.schools"],
  [/^\/schools\/([^/]+)$/, school.render, "nav.schools"],
  [/^\/devices$/, devices.render, "nav.devices"],
  [/^\/devices\/([^/]+)$/, device.render, "nav.devices"],
  [/^\/users$/, admin.renderUsers, "nav.users"],
  [/^\/audit$/, admin.renderAudit, "nav.audit"],
  [/^\/connectivity$/, connectivity.render, "nav.connectivity"],
  [/^\/alerts$/, alerts.render, "nav.alerts"],
  [/^\/alerts\/(\d+)$/, alerts.renderOne, "nav.alerts"],
];

const HEARTBEAT_MS = 20000;
const view = () => document.getElementById("view");

function drawChrome() {
  document.documentElement.lang = lang();
  document.title = t("app.title");
  const nav = document.getElementById("nav");
  nav.textContent = "";
  // logged out (the login page): no links to pages that would only send back here
  const items = session.user ? [["/", "nav.overview"], ["/schools", "nav.schools"], ["/devices", "nav.devices"],
    ["/connectivity", "nav.connectivity"], ["/alerts", "nav.alerts"]] : [];
  if (may("users")) {
    items.push(["/users", "nav.users"], ["/audit", "nav.audit"]);
  }
  for (const [href, key] of items) {
    nav.appendChild(h("a", { href: href, "data-nav": "1", id: "nav-" + key.split(".")[1] }, t(key)));
  }
  document.getElementById("brand-sub").textContent = t("app.subtitle");
  const who = document.getElementById("who");
  who.textContent = session.user ? session.user.name + " · " + t("role." + session.user.role) : "";
  document.getElementById("logout").hidden = !session.user;
  document.getElementById("logout").textContent = t("nav.logout");
  document.getElementById("lang").textContent = lang() === "vi" ? "English" : "Tiếng Việt";
  document.getElementById("banner-text").textContent = t("banner.unreachable");
}

function markNav(key) {
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("here", a.id === "nav-" + key.split(".")[1]);
  }
}

function notFound(root, messageText) {
  root.textContent = "";
  document.title = t("notfound.title") + " — schoolmon";
  root.appendChild(h("section", { class: "notfound", id: "notfound" },
    h("h2", {}, t("notfound.title")),
    h("p", {}, messageText || t("notfound.text")),
    h("p", {}, h("a", { href: "/", "data-nav": "1" }, t("notfound.home")))));
}

// What a page shows when its main request failed: not found, not for this role (only the
// API's message, nothing of the page), or the API's own message.
function failed(root, err) {
  if (err instanceof ApiError && err.status === 404) { notFound(root, err.message); return; }
  if (err instanceof ApiError && err.status === 401) { return; }  // the login page takes over
  if (err instanceof ApiError && err.status === 403) {  // not this role's page: only why
    root.textContent = "";
    document.title = t("forbidden.title") + " — schoolmon";
    root.appendChild(h("section", { class: "notfound", id: "forbidden" },
      h("h2", {}, t("forbidden.title")),
      h("p", { class: "error", role: "alert" }, err.message),
      h("p", {}, h("a", { href: "/", "data-nav": "1" }, t("notfound.home")))));
    return;
  }
  if (!(err instanceof ApiError)) { return; }  // unreachable: the banner says it, data stays
  root.appendChild(h("p", { class: "error", role: "alert" }, err.message));
}

async function route() {
  const gen = nextGeneration();
  settled(false);
  const path = location.pathname.replace(/\/+$/, "") || "/";
  if (path === "/login") {
    drawChrome();
    await login.render(view(), gen, new URLSearchParams(location.search));
    settled(true);
    return;
  }
  if (!session.user) {
    try {
      const me = await api("/api/v1/session", { noExpire: true });
      session.user = me;
      session.csrf = me.csrf_token;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        go("/login" + "?next=" + encodeURIComponent(location.pathname + location.search), true);
        return;
      }
      drawChrome();
      settled(true);
      return;
    }
  }
  drawChrome();
  for (const [re, render, navKey] of ROUTES) {
    const m = re.exec(path);
    if (m) {
      markNav(navKey);
      const root = view();
      try {
        await render(root, gen, m.slice(1).map(decodeURIComponent), new URLSearchParams(location.search));
      } catch (e) {
        if (current(gen)) { failed(root, e); }
      }
      if (current(gen)) { settled(true); }
      return;
    }
  }
  markNav("");
  notFound(view());
  settled(true);
}

function start() {
  setRouter(route);
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest && ev.target.closest("a[data-nav]");
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) { return; }
    ev.preventDefault();
    go(a.getAttribute("href"));
  });
  window.addEventListener("popstate", () => { route(); });
  document.getElementById("lang").addEventListener("click", () => {
    setLang(lang() === "vi" ? "en" : "vi");
    route();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    try { await api("/api/v1/session", { method: "DELETE", noExpire: true }); } catch (e) { /* gone anyway */ }
    session.user = null; session.csrf = null;
    go("/login?bye=1");
  });
  // the collector unreachable: a banner in the page's language, what is shown greyed
  on("unreachable", () => {
    document.getElementById("banner").hidden = false;
    document.body.classList.add("stale");
  });
  on("reachable", () => {
    const wasStale = document.body.classList.contains("stale");
    document.getElementById("banner").hidden = true;
    document.body.classList.remove("stale");
    if (wasStale) { route(); }  // back: what is shown is redrawn from fresh data
  });
  // a heartbeat: the banner comes up (and goes) even when nobody clicks, and an expired
  // session goes back to the login page
  setInterval(() => {
    if (session.user) { api("/api/v1/session").catch(() => {}); }
  }, HEARTBEAT_MS);
  on("expired", () => {
    if (!session.user) { return; }
    session.user = null; session.csrf = null;
    go("/login?expired=1&next=" + encodeURIComponent(location.pathname + location.search), true);
  });
  document.documentElement.lang = lang();
  route();
}

start();
