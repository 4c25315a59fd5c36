// The playground: one websocket, one conversation per pane, answers streamed token by
// token. Protocol: streaming/playground.py. No framework, no CDN.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const panes = {a: makePane("a"), b: makePane("b")};
  let ws = null, retry = 500;

  function makePane(id) {
    const el = $("pane-" + id);
    return {id, el, log: el.querySelector(".log"), title: el.querySelector(".pane-title"), history: [], current: null};
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + "/ws/playground/");
    ws.onopen = () => { status("connected", "ok"); retry = 500; };
    ws.onclose = (ev) => {
      status(ev.code === 4403 ? "sign in as staff" : "disconnected", "bad");
      for (const p of Object.values(panes)) if (p.current) finish(p, "The connection closed.", true);
      if (ev.code !== 4403) setTimeout(connect, retry = Math.min(retry * 2, 8000));
    };
    ws.onmessage = (ev) => handle(JSON.parse(ev.data));
  }

  function status(text, cls) { const s = $("conn"); s.textContent = text; s.className = "pill " + (cls || ""); }

  function handle(m) {
    if (m.type === "routes") return fillRoutes(m);
    const pane = panes[m.id];
    if (m.type === "error" && !pane) return notice(panes.a, m.message);
    if (!pane) return;
    if (m.type === "start") { pane.current && (pane.current.requestId = m.request_id); }
    else if (m.type === "delta") append(pane, m.text);
    else if (m.type === "done") { showFigures(pane, m.figures); finish(pane, null, false); }
    else if (m.type === "stopped") { showFigures(pane, m.figures, "stopped"); finish(pane, null, false); }
    else if (m.type === "error") finish(pane, m.message + (m.code ? " (" + m.code + ")" : ""), true);
  }

  function fillRoutes(m) {
    $("key").textContent = m.key + "…";
    for (const id of ["route-a", "route-b"]) {
      const sel = $(id), keep = sel.value;
      sel.innerHTML = "";
      for (const r of m.routes) {
        const o = document.createElement("option");
        o.value = r.name; o.textContent = r.name + " (" + r.strategy + ")";
        sel.appendChild(o);
      }
      if (keep && [...sel.options].some((o) => o.value === keep)) sel.value = keep;
    }
    if (m.routes.length > 1 && $("route-b").value === $("route-a").value) $("route-b").selectedIndex = 1;
    titles();
  }

  function titles() {
    panes.a.title.textContent = $("route-a").value || "no route";
    panes.b.title.textContent = $("route-b").value || "no route";
  }

  function bubble(pane, role, text) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    div.innerHTML = '<span class="who"></span><span class="text"></span>';
    div.querySelector(".who").textContent = role;
    div.querySelector(".text").textContent = text;
    pane.log.appendChild(div);
    pane.el.scrollTop = pane.el.scrollHeight;
    return div;
  }

  function notice(pane, text) { bubble(pane, "error", text); }

  function append(pane, text) {
    const c = pane.current; if (!c) return;
    c.text += text;
    c.node.querySelector(".text").textContent = c.text;
    pane.el.scrollTop = pane.el.scrollHeight;
  }

  function finish(pane, error, failed) {
    const c = pane.current; if (!c) return;
    c.node.classList.remove("streaming");
    if (error) { c.node.classList.add("error"); c.node.querySelector(".text").textContent = (c.text ? c.text + "\n" : "") + error; }
    if (!failed && c.text) pane.history.push({role: "assistant", content: c.text});
    if (failed) pane.history.pop();  // the prompt that failed is not part of the conversation
    pane.current = null;
    busy();
  }

  function showFigures(pane, f, state) {
    const c = pane.current; if (!c || !f) return;
    const parts = [];
    const add = (k, v) => { if (v !== null && v !== undefined && v !== "") parts.push("<span>" + k + " <b></b></span>"), vals.push(String(v)); };
    const vals = [];
    if (state) add("", state.toUpperCase());
    add("model", f.model);  // "provider/model"
    add("attempts", f.attempts + (f.fallbacks ? " (" + f.fallbacks + " fallback)" : ""));
    if (f.attempt_log && f.attempt_log.length > 1) add("path", f.attempt_log.join(" → "));
    add("TTFT", f.ttft_ms !== null ? f.ttft_ms + " ms" : null);
    add("latency", f.latency_ms + " ms");
    add("tokens in/out", f.prompt_tokens + " / " + f.completion_tokens + (f.usage_estimated ? " (estimated)" : ""));
    add("cost", "$" + f.cost_usd);
    add("cache", f.cache);
    const g = [];
    for (const side of Object.keys(f.guardrails || {})) for (const [name, out] of Object.entries(f.guardrails[side])) g.push(name + " " + out + " (" + side + ")");
    add("guardrails", g.join(", "));
    const div = document.createElement("div");
    div.className = "figures";
    div.innerHTML = parts.join("");
    div.querySelectorAll("b").forEach((b, i) => { b.textContent = vals[i]; });
    c.node.appendChild(div);
  }

  function comparing() { return $("compare").checked; }
  function active() { return comparing() ? [panes.a, panes.b] : [panes.a]; }
  function busy() {
    const any = Object.values(panes).some((p) => p.current);
    $("stop").disabled = !any; $("send").disabled = any;
  }

  function send(ev) {
    ev.preventDefault();
    const text = $("prompt").value;
    if (!text.trim() || !ws || ws.readyState !== 1) return;
    for (const pane of active()) {
      const route = $(pane.id === "a" ? "route-a" : "route-b").value;
      pane.history.push({role: "user", content: text});
      bubble(pane, "user", text);
      const node = bubble(pane, "assistant", "");
      node.classList.add("streaming");
      pane.current = {node, text: ""};
      const msg = {type: "send", id: pane.id, route, messages: pane.history.slice(),
                   system: $("system").value || null,
                   temperature: parseFloat($("temperature").value), max_tokens: parseInt($("max-tokens").value, 10)};
      if (Number.isNaN(msg.temperature)) delete msg.temperature;
      if (Number.isNaN(msg.max_tokens)) delete msg.max_tokens;
      const data = JSON.stringify(msg);
      if (new Blob([data]).size > Number(document.body.dataset.maxBytes)) { finish(pane, "The conversation is too long to send; clear it.", true); continue; }
      ws.send(data);
    }
    $("prompt").value = "";
    busy();
  }

  $("composer").addEventListener("submit", send);
  $("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e); });
  $("stop").addEventListener("click", () => ws && ws.send(JSON.stringify({type: "stop"})));
  $("clear").addEventListener("click", () => { for (const p of Object.values(panes)) { p.history = []; p.log.innerHTML = ""; } });
  $("compare").addEventListener("change", () => { document.body.classList.toggle("comparing", comparing()); titles(); });
  $("route-a").addEventListener("change", titles);
  $("route-b").addEventListener("change", titles);
  connect();
})();
