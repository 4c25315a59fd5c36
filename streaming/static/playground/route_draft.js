// Route change form: "Try these values before saving" streams the form's current values
// (a draft, nothing saved) over the playground websocket (route_test.js). The saved
// route's id comes from the script tag's data-route-pk (empty on the add form).
(function () {
  "use strict";
  const pk = document.currentScript && document.currentScript.dataset.routePk;
  const go = document.getElementById("draft-go"), stop = document.getElementById("draft-stop");
  if (!go) return;
  let current = null;
  go.addEventListener("click", function () {
    const form = document.getElementById("route_form");
    const prompt = document.getElementById("draft-prompt").value || "Say hello in five words.";
    const draft = gatewayRouteDraft(form, pk ? parseInt(pk, 10) : null);
    go.disabled = true; stop.disabled = false;
    current = gatewayStreamTest({draft: draft, messages: [{role: "user", content: prompt}]},
                                document.getElementById("draft-text"), document.getElementById("draft-figures"),
                                function () { go.disabled = false; stop.disabled = true; });
  });
  stop.addEventListener("click", function () { if (current) current.stop(); });
})();
