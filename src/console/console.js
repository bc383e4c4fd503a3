"use strict";
// Every value from the API is put in the page with textContent, never as
// markup: a body or an error carrying <script> stays text.
(function () {
  const base = location.pathname.replace(/\/+$/, "");
  const write = { "X-Console-Request": "1", "Content-Type": "application/json" };
  const $ = (id) => document.getElementById(id);
  let refreshing = null;

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  function button(parent, label, action, data) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.action = action;
    for (const [k, v] of Object.entries(data || {})) b.dataset[k] = v;
    parent.appendChild(b);
    return b;
  }
  function when(ms) {
    return ms ? new Date(ms).toLocaleString() : "";
  }
  function status(text) {
    $("status").textContent = text;
  }

  async function api(path, options) {
    const response = await fetch(base + "/api/" + path, Object.assign({ credentials: "same-origin" }, options));
    if (response.status === 401) {
      showLogin();
      throw new Error("unauthorized");
    }
    const body = await response.json().catch(() => ({}));
    return { status: response.status, body };
  }
  function post(path, payload) {
    return api(path, { method: "POST", headers: write, body: JSON.stringify(payload) });
  }

  function showLogin() {
    $("console").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    if (refreshing) clearInterval(refreshing);
    refreshing = null;
  }
  function showConsole() {
    $("login").hidden = true;
    $("console").hidden = false;
    $("logout").hidden = false;
    if (!refreshing) refreshing = setInterval(refresh, 2000);
  }

  function renderCounts(counts) {
    $("count-pending").textContent = counts.pending;
    $("count-running").textContent = counts.running;
    $("count-dead").textContent = counts.dead;
    const body = $("schemes").tBodies[0];
    body.replaceChildren();
    for (const s of counts.schemes) {
      const row = body.insertRow();
      row.dataset.scheme = s.scheme;
      cell(row, s.scheme);
      cell(row, s.pending);
      cell(row, s.running);
      cell(row, s.dead);
      const actions = cell(row, "", "actions");
      if (s.dead > 0) button(actions, "Replay all dead", "replay-scheme", { scheme: s.scheme });
    }
  }

  function renderDead(letters) {
    const body = $("dead-letters").tBodies[0];
    body.replaceChildren();
    $("dead-empty").hidden = letters.length > 0;
    for (const l of letters) {
      const row = body.insertRow();
      row.dataset.key = l.key;
      cell(row, l.scheme);
      cell(row, l.tenant);
      cell(row, l.id);
      cell(row, l.attempts);
      cell(row, l.last_error, "error");
      cell(row, when(l.accepted_at_ms));
      cell(row, when(l.last_attempt_at_ms));
      const actions = cell(row, "", "actions");
      button(actions, "Replay", "replay", { key: l.key });
      button(actions, "View", "view", { key: l.key });
      button(actions, "Discard", "discard", { key: l.key });
    }
  }

  function renderTable(table, columns, rows) {
    const head = table.tHead.rows[0];
    head.replaceChildren();
    for (const c of columns) {
      const th = document.createElement("th");
      th.textContent = c;
      head.appendChild(th);
    }
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const r of rows) {
      const row = body.insertRow();
      for (const c of columns) cell(row, typeof r[c] === "object" && r[c] !== null ? JSON.stringify(r[c]) : r[c]);
    }
  }

  async function renderRuns() {
    const { body } = await api("runs");
    if (Array.isArray(body.runs)) {
      $("runs-note").textContent = "The application's most recent handler runs, newest first.";
      const runs = body.runs.slice(-50).reverse();
      const columns = runs.length ? Object.keys(runs[0]) : ["seq", "scheme", "id", "attempt", "status"];
      renderTable($("runs"), columns, runs);
    } else {
      $("runs-note").textContent =
        "The application keeps no record of handler runs: shown instead are the jobs pending and running.";
      const pending = (await api("jobs?state=pending&limit=50")).body;
      const running = (await api("jobs?state=running&limit=50")).body;
      const jobs = running.concat(pending).map((j) => ({
        state: j.state, scheme: j.scheme, id: j.id, attempts: j.attempts, last_error: j.last_error,
      }));
      renderTable($("runs"), ["state", "scheme", "id", "attempts", "last_error"], jobs);
    }
  }

  async function refresh() {
    try {
      const counts = await api("counts");
      if (counts.status !== 200) {
        status("The queue did not answer (" + (counts.body.error || counts.status) + ")");
        return;
      }
      showConsole();
      renderCounts(counts.body);
      renderDead((await api("dead-letters?limit=200")).body);
      await renderRuns();
      status("Updated " + new Date().toLocaleTimeString());
    } catch (e) {
      if (e.message !== "unauthorized") status("Could not refresh: " + e.message);
    }
  }

  async function view(key) {
    const { status: code, body } = await api("dead-letter?key=" + encodeURIComponent(key));
    if (code !== 200) {
      status("No dead letter " + key);
      return;
    }
    $("detail-key").textContent = key;
    $("detail-request").textContent = body.method + " " + body.uri + " (" + body.body_bytes + " bytes)";
    const headers = $("detail-headers").tBodies[0];
    headers.replaceChildren();
    for (const [name, value] of body.headers) {
      const row = headers.insertRow();
      cell(row, name);
      cell(row, value);
    }
    $("detail-body").textContent = body.body !== null ? body.body : "(not UTF-8; base64) " + body.body_base64;
    $("detail").hidden = false;
  }

  document.addEventListener("click", async (event) => {
    const target = event.target.closest("button[data-action]");
    if (!target) return;
    const { action, key, scheme } = target.dataset;
    target.disabled = true;
    try {
      if (action === "replay") {
        const r = await post("replay", { key });
        status(r.status === 202 ? "Replayed " + key : "Not replayed: " + (r.body.error || r.status));
      } else if (action === "replay-scheme") {
        const r = await post("replay-scheme", { scheme });
        status(r.status === 200 ? "Replayed " + r.body.replayed + " of " + scheme : "Not replayed: " + (r.body.error || r.status));
      } else if (action === "discard") {
        if (!confirm("Discard the dead letter " + key + "? It cannot be replayed afterwards.")) return;
        const r = await post("discard", { key });
        status(r.status === 200 ? "Discarded " + key : "Not discarded: " + (r.body.error || r.status));
      } else if (action === "view") {
        await view(key);
      }
      await refresh();
    } catch (e) {
      if (e.message !== "unauthorized") status("Failed: " + e.message);
    } finally {
      target.disabled = false;
    }
  });

  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; });

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch(base + "/login", {
      method: "POST",
      credentials: "same-origin",
      headers: write,
      body: JSON.stringify({ token: $("token").value }),
    });
    $("token").value = "";
    if (response.status === 204) {
      $("login-error").textContent = "";
      await refresh();
    } else {
      $("login-error").textContent = "That token is not the console's.";
    }
  });

  $("logout").addEventListener("click", async () => {
    await fetch(base + "/logout", { method: "POST", credentials: "same-origin", headers: write });
    showLogin();
  });

  refresh();
})();
