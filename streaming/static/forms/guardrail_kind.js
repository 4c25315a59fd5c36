// Guardrail change form (templates/admin/guardrails/guardrail/change_form.html): each
// kind has its own settings; show only the chosen kind's (the others keep their values).
// Without JavaScript every kind's settings stay visible.
(function () {
  "use strict";
  const kind = document.getElementById("id_kind");
  if (!kind) return;
  function update() {
    document.querySelectorAll("fieldset.guardrail-kind").forEach(function (el) {
      el.style.display = el.classList.contains("guardrail-kind-" + kind.value) ? "" : "none";
    });
  }
  kind.addEventListener("change", update);
  update();
})();
