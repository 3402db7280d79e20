// The p2c console: reads the app's console API, renders with textContent only (no HTML from data).
"use strict";

const numbers = new Intl.NumberFormat();
const state = { me: null, failures: [], selected: new Set(), detail: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "on") for (const [e, f] of Object.entries(v)) node.addEventListener(e, f);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// Numbers with their unit; times in the viewer's own time zone.
function count(n, unit) {
  return `${numbers.format(n)} ${unit}${n === 1 ? "" : "s"}`;
}
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
    timeZoneName: "short",
  });
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-P2C-Console": "1" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, { credentials: "same-origin", ...init });
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function say(text, error = false) {
  const toast = document.getElementById("toast");
  toast.textContent = text;
  toast.className = error ? "error" : "";
}

function confirmAction(text, withSince = false) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-since-row").hidden = !withSince;
  document.getElementById("confirm-since").value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

async function act(name, body, message) {
  try {
    const result = await api(`api/${name}`, body);
    say(message(result));
  } catch (e) {
    say(`${name} failed: ${e.message}`, true);
  }
  await refresh();
}

function stateOf(f) {
  if (!f.enabled) return ["disabled", "disabled"];
  if (f.paused_by === "setting") return ["paused (setting)", "paused-setting"];
  return f.paused ? ["paused", "paused"] : ["running", "running"];
}

function chart(buckets) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const top = Math.max(1, ...buckets.map((b) => b.written + b.failed));
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${buckets.length * 10} 40`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const total = buckets.reduce((a, b) => a + b.runs, 0);
  svg.setAttribute("aria-label", `runs in the last 24 hours: ${count(total, "run")}`);
  buckets.forEach((b, i) => {
    const w = (b.written / top) * 38, f = (b.failed / top) * 38;
    for (const [cls, h, y] of [["w", w, 40 - w], ["f", f, 40 - w - f]]) {
      if (h <= 0) continue;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("class", cls); r.setAttribute("x", i * 10 + 1); r.setAttribute("width", 8);
      r.setAttribute("y", y); r.setAttribute("height", Math.max(h, 1));
      const t = document.createElementNS(ns, "title");
      t.textContent = `${when(b.hour)}: ${count(b.written, "record")} written, ${b.failed} failed`;
      r.append(t); svg.append(r);
    }
  });
  return svg;
}

function countsTable(f) {
  const head = el("tr", {}, el("th", { scope: "col", text: "records" }),
    ...["read", "written", "skipped", "failed"].map((k) => el("th", { scope: "col", text: k })));
  const row = (label, c) => el("tr", {}, el("th", { scope: "row", text: label }),
    ...["read", "written", "skipped", "failed"].map((k) => el("td", { text: numbers.format(c[k]) })));
  return el("table", { class: "counts" }, el("thead", {}, head),
    el("tbody", {}, row("last hour", f.hour), row("last day", f.day)));
}

function flowButtons(f) {
  if (!state.me || state.me.role !== "operator") return null;
  const b = (label, handler, cls) => el("button", { type: "button", class: cls, "data-action": label, on: { click: handler } }, label);
  const name = f.flow;
  return el("div", { class: "buttons" },
    f.paused
      ? b("Resume", () => act("resume", { flow: name }, (r) => r.paused ? `${name} stays paused: ${r.note}` : `${name} resumed`))
      : b("Pause", () => act("pause", { flow: name }, () => `${name} paused: its polls read nothing until resumed`)),
    b("Replay all", async () => {
      if (await confirmAction(`Put every failed record of ${name} (${count(f.failures, "record")}) back on its queue?`))
        act("replay", { flow: name }, (r) => `${count(r.replayed, "record")} of ${name} replayed`);
    }),
    b("Reset cursor…", async () => {
      const text = `Reset the cursor of ${name}: its next poll reads the source again (everything, or what changed ` +
        "since the time below). Records that did not change write nothing.";
      if (!(await confirmAction(text, true))) return;
      const local = document.getElementById("confirm-since").value;
      const since = local ? new Date(local).toISOString() : null;
      act("reset-cursor", { flow: name, since }, () => `cursor of ${name} reset`);
    }, "danger"),
    b("Plan", () => preview(`api/plan/${name}`, `Plan for ${name}: what its next sync would write`)),
    b("Reconcile", () => preview(`api/reconcile/${name}`, `Reconcile ${name}: both sides compared`)),
  );
}

function flowCard(f) {
  const [label, cls] = stateOf(f);
  const last = f.last_run ? `${f.last_run.kind} ${f.last_run.status}, ${when(f.last_run.started)}` : "none yet";
  const fields = [
    ["last poll", when(f.last_poll)], ["cursor", `${f.cursor}, ${duration(f.cursor_age_s)} old`],
    ["lag", f.lag_s === null ? "nothing waiting" : duration(f.lag_s)], ["queued", count(f.queued, "message")],
    ["poison", count(f.poison, "message")], ["failures", count(f.failures, "record")], ["last run", last],
  ];
  return el("article", { class: "flow", "data-flow": f.flow, "aria-labelledby": `flow-${f.flow}` },
    el("h3", { id: `flow-${f.flow}` }, f.flow,
      el("span", { class: `badge state-${cls}`, "data-field": "state", text: label }),
      el("span", { class: `badge health-${f.healthy ? "yes" : "no"}`, text: f.healthy ? "healthy" : "needs attention" })),
    el("dl", { class: "fields" }, ...fields.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { "data-field": k, text: v })])),
    countsTable(f), chart(f.chart), flowButtons(f));
}

async function preview(path, title) {
  const box = document.getElementById("preview");
  document.getElementById("preview-title").textContent = title;
  document.getElementById("preview-body").textContent = "Working… (this reads both services)";
  box.hidden = false; box.focus();
  try {
    document.getElementById("preview-body").textContent = JSON.stringify(await api(path), null, 2);
  } catch (e) {
    document.getElementById("preview-body").textContent = `failed: ${e.message}`;
  }
}

function filterQuery() {
  const q = new URLSearchParams();
  for (const name of ["flow", "company", "error", "text"]) {
    const v = document.getElementById(`filter-${name}`).value;
    if (v) q.set(name, v);
  }
  return q.toString();
}

function fillSelect(id, values) {
  const select = document.getElementById(id);
  const keep = select.value;
  select.replaceChildren(el("option", { value: "", text: "all" }), ...values.map((v) => el("option", { value: v, text: v })));
  select.value = values.includes(keep) ? keep : "";
}

function failureRow(f) {
  const id = `${f.flow}/${f.source_key}`;
  const box = el("input", { type: "checkbox", "aria-label": `select ${f.source_key}`, on: { change: (e) => {
    if (e.target.checked) state.selected.add(id); else state.selected.delete(id);
    document.getElementById("replay-selected").disabled = state.selected.size === 0;
  } } });
  box.checked = state.selected.has(id);
  const open = el("button", { type: "button", class: "link", on: { click: () => showFailure(f.flow, f.source_key) } }, f.source_key);
  return el("tr", { "data-key": f.source_key, "data-flow": f.flow },
    el("td", { class: "operator-only" }, box), el("td", { text: f.flow }), el("td", {}, open),
    el("td", { text: f.error_class }), el("td", { class: "message", text: f.message }),
    el("td", { class: "optional", text: when(f.last_seen) }));
}

async function loadFailures() {
  const data = await api(`api/failures?${filterQuery()}`);
  state.failures = data.failures;
  fillSelect("filter-error", data.classes);
  fillSelect("filter-company", data.companies);
  const keys = new Set(data.failures.map((f) => `${f.flow}/${f.source_key}`));
  for (const k of [...state.selected]) if (!keys.has(k)) state.selected.delete(k);
  document.querySelector("#failure-table tbody").replaceChildren(...data.failures.map(failureRow));
  document.getElementById("failure-count").textContent = `(${count(data.failures.length, "record")})`;
  document.getElementById("no-failures").hidden = data.failures.length > 0;
  document.getElementById("replay-selected").disabled = state.selected.size === 0;
}

async function showFailure(flow, key) {
  const f = await api(`api/failures/${encodeURIComponent(flow)}/${encodeURIComponent(key)}`);
  state.detail = f;
  const fields = [["flow", f.flow], ["key", f.key], ["company", f.company], ["error", f.error_class],
    ["message", f.message], ["HTTP status", f.status ?? "–"], ["request id", f.request_id ?? "–"],
    ["attempts", numbers.format(f.attempt)], ["first seen", when(f.first_seen)], ["last seen", when(f.last_seen)]];
  document.getElementById("detail-title").textContent = `Failure: ${f.flow} ${f.key}`;
  document.getElementById("detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  document.getElementById("detail-record").textContent = f.record ? JSON.stringify(f.record.data ?? f.record, null, 2) : "not kept";
  const items = [el("li", { text: `${when(f.first_seen)}: failed first` }), el("li", { text: `${when(f.last_seen)}: failed last (attempt ${f.attempt})` }),
    ...f.history.map((h) => el("li", { text: `${when(h.at)}: ${h.action} by ${h.actor} (${h.status})` }))];
  document.getElementById("detail-history").replaceChildren(...items);
  const box = document.getElementById("detail");
  box.hidden = false; box.focus();
}

async function loadHistory() {
  const data = await api("api/history");
  document.getElementById("history").replaceChildren(...data.actions.slice(0, 15).map((a) =>
    el("li", { text: `${when(a.at)}: ${a.action}${a.flow ? " " + a.flow : ""} by ${a.actor}${a.status === "ok" ? "" : " (" + a.status + ")"}` })));
}

let refreshing = 0;
async function refresh() {
  refreshing += 1;
  document.body.dataset.busy = "1";
  try {
    const flows = await api("api/flows");
    document.getElementById("flows").replaceChildren(...flows.flows.map(flowCard));
    await loadFailures();
    await loadHistory();
    document.getElementById("updated").textContent = `updated ${when(new Date().toISOString())}`;
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    say(`could not load: ${e.message}`, true);
  } finally {
    refreshing -= 1;
    if (refreshing === 0) delete document.body.dataset.busy;
  }
}

async function start() {
  try {
    state.me = await api("api/me");
  } catch (e) {
    say(`not allowed: ${e.message}`, true);
    return;
  }
  document.body.classList.toggle("viewer", state.me.role !== "operator");
  document.getElementById("environment").textContent = `Sales ${state.me.dataverse} → F&O ${state.me.fno}, company ${state.me.company}`;
  document.getElementById("user").textContent = `${state.me.name} (${state.me.role})`;
  fillSelect("filter-flow", state.me.flows);
  document.getElementById("filters").addEventListener("input", () => loadFailures());
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("refresh").addEventListener("click", refresh);
  document.getElementById("detail-close").addEventListener("click", () => { document.getElementById("detail").hidden = true; });
  document.getElementById("preview-close").addEventListener("click", () => { document.getElementById("preview").hidden = true; });
  document.getElementById("detail-replay").addEventListener("click", () => {
    const f = state.detail;
    act("replay", { flow: f.flow, keys: [f.key] }, (r) => `${count(r.replayed, "record")} replayed`);
    document.getElementById("detail").hidden = true;
  });
  document.getElementById("replay-selected").addEventListener("click", async () => {
    const byFlow = {};
    for (const id of state.selected) {
      const [flow, ...rest] = id.split("/");
      (byFlow[flow] ||= []).push(rest.join("/"));
    }
    if (!(await confirmAction(`Replay ${count(state.selected.size, "selected record")}?`))) return;
    for (const [flow, keys] of Object.entries(byFlow)) await act("replay", { flow, keys }, (r) => `${count(r.replayed, "record")} replayed`);
    state.selected.clear();
  });
  await refresh();
}

document.addEventListener("DOMContentLoaded", start);
