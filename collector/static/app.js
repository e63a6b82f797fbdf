// schoolmon: a first window on the fleet (Vietnamese). No build step, no framework.
"use strict";
(function () {
  var KEY = "schoolmon.token";
  // seq: number of the latest refresh asked for; an answer to an earlier one is dropped, so
  // a slow answer to an old filter never overwrites a newer one. data-settled on <body>
  // says whether what is shown answers the latest request (tests wait for it).
  var state = { page: 1, perPage: 50, timer: null, areasLoaded: false, seq: 0 };
  var $ = function (id) { return document.getElementById(id); };

  function token() { return sessionStorage.getItem(KEY); }

  function showLogin(message) {
    $("app").hidden = true; $("logout").hidden = true; $("login").hidden = false;
    var err = $("login-error");
    err.hidden = !message; err.textContent = message || "";
    if (state.timer) { clearInterval(state.timer); state.timer = null; }
  }

  function api(path) {
    return fetch(path, { headers: { "Authorization": "Bearer " + token(), "Accept-Language": "vi" } })
      .then(function (r) {
        if (r.status === 401) {
          sessionStorage.removeItem(KEY);
          throw new Error("auth");
        }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      });
  }

  function localTime(iso) {
    if (!iso) { return "—"; }
    // iso is the Asia/Ho_Chi_Minh rendering, e.g. 2026-11-22T21:05:00+07:00
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(iso);
    return m ? m[4] + ":" + m[5] + " " + m[3] + "/" + m[2] + "/" + m[1] : iso;
  }

  function card(value, label, cls) {
    var d = document.createElement("div");
    d.className = "card " + (cls || "");
    var v = document.createElement("div"); v.className = "v";
    v.textContent = (value === null || value === undefined) ? "—" : String(value);
    var k = document.createElement("div"); k.className = "k"; k.textContent = label;
    d.appendChild(v); d.appendChild(k);
    return d;
  }

  function renderSummary(s) {
    var c = $("cards"); c.textContent = "";
    var sch = s.schools, dev = s.devices;
    c.appendChild(card(sch.total, "Trường"));
    c.appendChild(card(sch.by_status.online, "Trường trực tuyến", "online"));
    c.appendChild(card(sch.by_status.partial, "Trường một phần mất kết nối", "partial"));
    c.appendChild(card(sch.by_status.offline, "Trường mất kết nối", "offline"));
    c.appendChild(card(dev.total, "Thiết bị"));
    c.appendChild(card(dev.by_status.online, "Thiết bị trực tuyến", "online"));
    c.appendChild(card(dev.by_status.offline, "Thiết bị mất kết nối", "offline"));
    c.appendChild(card(dev.by_state.pending, "Thiết bị chờ duyệt"));
    var b = s.below_baseline;
    c.appendChild(card(b.connectivity, "Dưới chuẩn băng thông"));
    c.appendChild(card(b.security, "Dưới chuẩn ATTT"));
    $("baseline-note").textContent = b.evaluated ? "" : (b.note || "");
    $("updated").textContent = localTime(s.now_local);
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function renderSchools(page) {
    var tb = $("schools"); tb.textContent = "";
    page.items.forEach(function (s) {
      var tr = document.createElement("tr");
      cell(tr, s.code); cell(tr, s.name); cell(tr, s.area && s.area.name || "—");
      var td = cell(tr, "");
      var span = document.createElement("span");
      span.className = "st " + s.status; span.textContent = s.status_label;
      td.appendChild(span);
      cell(tr, s.devices.total, "num"); cell(tr, s.devices.online, "num");
      cell(tr, s.devices.pending, "num"); cell(tr, localTime(s.last_seen_local));
      tb.appendChild(tr);
    });
    if (!page.items.length) {
      var tr = document.createElement("tr");
      var td = cell(tr, "Không có trường nào."); td.colSpan = 8;
      tb.appendChild(tr);
    }
    $("pageinfo").textContent = "Trang " + page.page + " / " + Math.max(page.pages, 1) +
      " · " + page.total + " trường";
    $("prev").disabled = page.page <= 1;
    $("next").disabled = page.page >= page.pages;
  }

  function fillAreas(org) {
    var sel = $("f-area");
    if (state.areasLoaded) { return; }
    state.areasLoaded = true;
    function add(unit, depth) {
      var o = document.createElement("option");
      o.value = String(unit.id);
      o.textContent = new Array(depth + 1).join("\u00a0\u00a0") + unit.name +
        " (" + unit.counts.schools + " trường)";
      sel.appendChild(o);
      (unit.children || []).forEach(function (c) {
        if (c.type === "unit") { add(c, depth + 1); }
      });
    }
    (org.roots || []).forEach(function (u) { add(u, 0); });
  }

  function settled(yes) { document.body.setAttribute("data-settled", yes ? "1" : "0"); }

  function refresh() {
    var mine = ++state.seq;
    settled(false);
    var qs = "?page=" + state.page + "&per_page=" + state.perPage;
    var st = $("f-status").value, q = $("f-q").value.trim(), area = $("f-area").value;
    if (area) { qs += "&area=" + encodeURIComponent(area); }
    if (st) { qs += "&status=" + encodeURIComponent(st); }
    if (q) { qs += "&q=" + encodeURIComponent(q); }
    return Promise.all([api("/api/v1/summary"), api("/api/v1/schools" + qs)])
      .then(function (r) {
        if (mine !== state.seq) { return; }  // a later request is under way: it decides
        $("login").hidden = true; $("app").hidden = false; $("logout").hidden = false;
        renderSummary(r[0]); renderSchools(r[1]);
        settled(true);
      })
      .catch(function (e) {
        if (mine !== state.seq) { return; }
        if (e.message === "auth") { showLogin("Mã truy cập không đúng hoặc đã hết hạn."); }
        else { $("updated").textContent = "lỗi tải dữ liệu (" + e.message + ")"; }
        settled(true);
      });
  }

  function start() {
    if (!token()) { showLogin(); return; }
    api("/api/v1/org?schools=false").then(fillAreas).catch(function () {});
    refresh().then(function () {
      if (!state.timer && token()) { state.timer = setInterval(refresh, 15000); }
    });
  }

  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("logout").addEventListener("click", function () {
    sessionStorage.removeItem(KEY); showLogin();
  });
  $("f-status").addEventListener("change", function () { state.page = 1; refresh(); });
  $("f-area").addEventListener("change", function () { state.page = 1; refresh(); });
  $("f-q").addEventListener("input", function () { state.page = 1; refresh(); });
  $("filters").addEventListener("submit", function (ev) { ev.preventDefault(); });
  $("prev").addEventListener("click", function () { state.page -= 1; refresh(); });
  $("next").addEventListener("click", function () { state.page += 1; refresh(); });
  start();
}());
