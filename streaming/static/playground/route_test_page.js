// "Test this route" page: "Stream it live" sends the form's request for the saved route
// (the script tag's data-route) over the playground websocket (route_test.js).
(function () {
  "use strict";
  const route = document.currentScript && document.currentScript.dataset.route;
  const form = document.querySelector("#content-main form");
  const go = document.getElementById("stream-live"), stop = document.getElementById("stream-stop");
  if (!form || !go) return;
  let current = null;
  go.addEventListener("click", function () {
    const val = (name) => (form.elements[name] || {}).value || "";
    const messages = [{role: "user", content: val("prompt")}];
    const request = {route: route, as_admin: true, messages: messages};
    if (val("system")) request.system = val("system");
    if (val("max_tokens")) request.max_tokens = parseInt(val("max_tokens"), 10);
    document.getElementById("live").style.display = "";
    go.disabled = true; stop.disabled = false;
    current = gatewayStreamTest(request, document.getElementById("live-text"), document.getElementById("live-figures"),
                                function () { go.disabled = false; stop.disabled = true; });
  });
  stop.addEventListener("click", function () { if (current) current.stop(); });
})();
