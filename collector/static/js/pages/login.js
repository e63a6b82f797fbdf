// The login page: name + password → POST /api/v1/session (sets the session cookie, answers
// who you are and the CSRF token). ?expired=1 says the session ran out; ?next= is where to go.
import { api, h, session, t, ApiError, Unreachable } from "../core.js";
import { go } from "../nav.js";

function safeNext(next) {
  // only a path of this site (never "//host" or a scheme): no open redirect
  return next && /^\/(?!\/)/.test(next) && !next.startsWith("/login") ? next : "/";
}

export async function render(root, gen, params) {
  root.textContent = "";
  document.title = t("login.title") + " — schoolmon";
  const note = params.get("expired") ? t("login.expired") : (params.get("bye") ? t("login.bye") : "");
  const error = h("p", { class: "error", id: "login-error", role: "alert", hidden: true });
  const name = h("input", { id: "login-name", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, t("login.submit"));
  const form = h("form", { id: "login-form", class: "login" },
    h("h2", {}, t("login.title")),
    note ? h("p", { class: "note", id: "login-note" }, note) : null,
    h("label", {}, t("login.name"), name),
    h("label", {}, t("login.password"), password),
    submit, error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      const me = await api("/api/v1/session", { method: "POST", noExpire: true,
        body: { name: name.value.trim(), password: password.value } });
      session.user = me;
      session.csrf = me.csrf_token;
      go(safeNext(params.get("next")), true);
    } catch (e) {
      password.value = "";
      error.textContent = (e instanceof ApiError && e.status === 401) ? t("login.wrong")
        : (e instanceof ApiError && e.status === 429) ? t("login.too_many")
        : (e instanceof Unreachable) ? t("banner.unreachable") : e.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  root.appendChild(form);
  name.focus();
}
