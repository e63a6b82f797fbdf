// schoolmon pages: what every page shares — texts and language, safe DOM building, the API
// client (session cookie + CSRF header), the "collector unreachable" banner, formatting.
// No framework, no build step. Every value from the API reaches the page as text
// (textContent / attribute values), never as HTML: school, room and device names may carry
// markup.
import TEXTS from "/ui/texts.js";

const LANG_KEY = "schoolmon.lang";

export const session = { user: null, csrf: null };

export function lang() {
  const v = localStorage.getItem(LANG_KEY);
  return v === "en" ? "en" : "vi";
}

export function setLang(value) {
  localStorage.setItem(LANG_KEY, value === "en" ? "en" : "vi");
  document.documentElement.lang = lang();
}

// The page text of ``key`` in the current language; {name} placeholders filled from ``args``.
export function t(key, args) {
  const entry = TEXTS[key];
  let s = entry ? (entry[lang()] || entry.vi) : key;
  if (args) {
    s = s.replace(/\{(\w+)\}/g, (m, k) => (args[k] === undefined || args[k] === null ? "—" : String(args[k])));
  }
  return s;
}

// The codes that have a text under ``prefix`` ("audit_action." → ["login", ...]), in the
// order collector/text.py lists them.
export function codes(prefix) {
  return Object.keys(TEXTS).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
}

// h("a", {href: "/x", class: "c"}, "text", child): an element; strings become text nodes.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) { continue; }
    if (k === "class") { el.className = v; }
    else if (k === "dataset") { Object.assign(el.dataset, v); }
    else if (k.startsWith("on")) { el.addEventListener(k.slice(2), v); }
    else if (k === "hidden" || k === "disabled" || k === "selected" || k === "checked") { el[k] = Boolean(v); }
    else if (k === "value") { el.value = v; }
    else { el.setAttribute(k, String(v)); }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) { continue; }
    if (Array.isArray(c)) { append(el, c); }
    else if (c instanceof Node) { el.appendChild(c); }
    else { el.appendChild(document.createTextNode(String(c))); }
  }
}

// A link that the router handles without reloading (see app.js).
export function link(href, ...children) {
  return h("a", { href: href, "data-nav": "1" }, ...children);
}

// An org unit's name, "(cũ)" after it when the 2025 reform abolished it.
export function unitName(u) {
  return u ? u.name + (u.former ? t("unit.former") : "") : "—";
}

export function dash(v) { return (v === null || v === undefined || v === "") ? "—" : String(v); }

// "2026-11-22T21:05:00+07:00" (the API's local rendering) → "21:05 22/11/2026".
export function localTime(iso) {
  if (!iso) { return "—"; }
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(iso);
  return m ? m[4] + ":" + m[5] + " " + m[3] + "/" + m[2] + "/" + m[1] : iso;
}

// How long ago an ISO time was, in words ("3 ngày", "5 giờ", "12 phút").
export function ago(iso) {
  if (!iso) { return "—"; }
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 3600) { return t("ago.minutes", { n: Math.max(1, Math.round(s / 60)) }); }
  if (s < 86400 * 2) { return t("ago.hours", { n: Math.round(s / 3600) }); }
  return t("ago.days", { n: Math.round(s / 86400) });
}

export function pct(v) {
  return (v === null || v === undefined) ? "—" : (Math.round(v * 10) / 10).toLocaleString(lang() === "vi" ? "vi-VN" : "en-GB") + " %";
}

export function num(v) {
  return (v === null || v === undefined) ? "—" : Number(v).toLocaleString(lang() === "vi" ? "vi-VN" : "en-GB");
}

// The "‹ Trước · Trang 2 / 5 · 120 trường · Sau ›" line under a list, into `into`:
// `textKey` names what is counted (pager.schools, pager.devices ...), `go(n)` opens page n.
export function pager(into, page, textKey, go) {
  const pageNo = page.page || 1, pages = Math.max(page.pages || 1, 1);
  const prev = h("button", { type: "button", id: "prev", disabled: pageNo <= 1 }, "‹ " + t("pager.prev"));
  const next = h("button", { type: "button", id: "next", disabled: pageNo >= pages }, t("pager.next") + " ›");
  prev.addEventListener("click", () => go(pageNo - 1));
  next.addEventListener("click", () => go(pageNo + 1));
  into.textContent = "";
  into.append(prev, " ", h("span", { id: "pagecount", dataset: { total: String(page.total) } },
    t(textKey, { page: pageNo, pages: pages, total: num(page.total) })), " ", next);
}

export function bytes(v) {
  if (v === null || v === undefined) { return "—"; }
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0; let x = Number(v);
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i += 1; }
  return (Math.round(x * 10) / 10).toLocaleString(lang() === "vi" ? "vi-VN" : "en-GB") + " " + units[i];
}

// Data moved (tests, budgets) as links and the config count it: powers of 10 (1 MB = 10^6
// bytes, connectivity.budget_*_mb), unlike bytes() for RAM and disks.
export function dataBytes(v) {
  if (v === null || v === undefined) { return "—"; }
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0; let x = Number(v);
  while (x >= 1000 && i < units.length - 1) { x /= 1000; i += 1; }
  return (Math.round(x * 10) / 10).toLocaleString(lang() === "vi" ? "vi-VN" : "en-GB") + " " + units[i];
}

// A filter's drop-down: "Tất cả" and ``options`` ([value, text]); a value from the address
// that is none of them (a bookmark, an old link) is kept as an option of its own, so the
// filter in force is always the one shown.
export function filterSelect(name, label, value, options, cls) {
  const known = options.some(([v]) => v === value);
  const all = value && !known ? options.concat([[value, value]]) : options;
  return h("label", { class: cls || null }, label, h("select", { id: "f-" + name, name: name },
    h("option", { value: "" }, t("filter.all")),
    all.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

// A text starting with a capital letter (labels shared with badges are lower case: "mất
// kết nối"; a card's title reads "Mất kết nối").
export function capital(s) {
  return s ? s.charAt(0).toLocaleUpperCase(lang() === "vi" ? "vi-VN" : "en-GB") + s.slice(1) : s;
}

export function statusBadge(code, label) {
  return h("span", { class: "st " + (code || "unknown") }, label || t("status." + (code || "unknown")));
}

// --- the API ------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || ("HTTP " + status));
    this.status = status;
    this.body = body || {};
  }
}

// Thrown when the collector cannot be reached at all (no answer): the banner says so.
export class Unreachable extends Error {}

const listeners = { unreachable: [], reachable: [], expired: [] };
export function on(event, fn) { listeners[event].push(fn); }
function emit(event, arg) { for (const fn of listeners[event]) { fn(arg); } }

export async function api(path, options) {
  const opts = options || {};
  const headers = { "Accept": "application/json", "Accept-Language": lang() };
  const method = opts.method || "GET";
  if (method !== "GET") {
    headers["X-CSRF-Token"] = session.csrf || "";
    if (opts.body !== undefined) { headers["Content-Type"] = "application/json"; }
  }
  let r;
  try {
    r = await fetch(path, {
      method: method, headers: headers, credentials: "same-origin",
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch (e) {
    emit("unreachable");
    throw new Unreachable(t("banner.unreachable"));
  }
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status >= 502 && r.status <= 504) {  // a proxy in front answers for a collector gone
    emit("unreachable");
    throw new Unreachable(t("banner.unreachable"));
  }
  emit("reachable");
  if (r.status === 401 && !opts.noExpire) {
    emit("expired");
    throw new ApiError(401, body);
  }
  if (!r.ok) { throw new ApiError(r.status, body); }
  return body;
}

// Query string from an object, leaving out empty values.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") { u.set(k, String(v)); }
  }
  const s = u.toString();
  return s ? "?" + s : "";
}

// What the user's role may do (the session route says: deps.RIGHTS). The pages only offer
// the buttons a role could use; the API decides.
export function may(action) {
  return Boolean(session.user && (session.user.rights || []).includes(action));
}
