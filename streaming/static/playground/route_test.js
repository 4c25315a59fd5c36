// "Test this route" streamed live over the playground websocket (streaming/playground.py):
// on the test page for the saved route, and on the route's change form for the values
// being edited (a draft: nothing is saved). No framework.
(function () {
  "use strict";

  function open(onMessage) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/playground/");
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    return ws;
  }

  // Stream one test call; `out` gets the text as it arrives, `figs` the figures.
  window.gatewayStreamTest = function (request, out, figs, done) {
    out.textContent = ""; figs.textContent = "connecting…"; out.classList.add("streaming");
    let text = "";
    const ws = open(function (m) {
      if (m.type === "routes") { ws.send(JSON.stringify(Object.assign({type: "send", id: "test"}, request))); figs.textContent = "waiting for the first token…"; return; }
      if (m.id && m.id !== "test") return;
      if (m.type === "delta") { text += m.text; out.textContent = text; }
      else if (m.type === "done" || m.type === "stopped") {
        const f = m.figures;
        figs.textContent = (m.type === "stopped" ? "stopped · " : "") + f.model +
          " · attempts " + f.attempts + (f.attempt_log.length > 1 ? " (" + f.attempt_log.join(" → ") + ")" : "") +
          " · TTFT " + f.ttft_ms + " ms · total " + f.latency_ms + " ms · tokens " + f.prompt_tokens + "/" +
          f.completion_tokens + " · $" + f.cost_usd + " · request " + f.request_id;
        finish();
      } else if (m.type === "error") { figs.textContent = "Error: " + m.message; out.classList.add("error"); finish(); }
    });
    ws.onclose = function (ev) { if (ev.code === 4403) figs.textContent = "Sign in as a staff user."; out.classList.remove("streaming"); };
    function finish() { out.classList.remove("streaming"); ws.close(); if (done) done(); }
    return {stop: function () { if (ws.readyState === 1) ws.send(JSON.stringify({type: "stop", id: "test"})); }};
  };

  // The route change form's current values, as routing/drafts.py reads them.
  window.gatewayRouteDraft = function (form, routeId) {
    const fields = {}, targets = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      const m = /^targets-(\d+)-(\w+)$/.exec(el.name);
      if (m) {
        const row = targets[m[1]] = targets[m[1]] || {};
        if (m[2] === "task_types") { row.task_types = row.task_types || []; if (el.checked) row.task_types.push(el.value); }
        else if (el.type === "checkbox") row[m[2] === "DELETE" ? "delete" : m[2]] = el.checked;
        else row[m[2]] = el.value;
        continue;
      }
      if (/^(csrfmiddlewaretoken|_)/.test(el.name) || el.name.indexOf("-") >= 0) continue;
      if (el.type === "checkbox") {
        if (el.name === "retry_on") { fields.retry_on = fields.retry_on || []; if (el.checked) fields.retry_on.push(el.value); }
        else fields[el.name] = el.checked;
      } else if (el.multiple) fields[el.name] = [...el.selectedOptions].map((o) => o.value);
      else if (el.type !== "radio" || el.checked) fields[el.name] = el.value;
    }
    if (Array.isArray(fields.retry_on)) fields.retry_on = JSON.stringify(fields.retry_on);
    const rows = Object.values(targets).filter((r) => r.model);
    return {id: routeId || null, fields: fields, targets: rows};
  };
})();
