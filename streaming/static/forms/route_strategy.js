// Route change form (templates/admin/routing/route/change_form.html): each strategy
// setting matters to one strategy only: hide the others' settings (they keep their
// values). Without JavaScript everything stays visible.
(function () {
  "use strict";
  const only = {
    sticky_by: ["loadbalance"], explore_rate: ["least_latency"], min_quality: ["cost"],
    rules: ["conditional"], task_types: ["task"], weight: ["loadbalance"]
  };
  const strategy = document.getElementById("id_strategy");
  if (!strategy) return;
  function update() {
    for (const [field, strategies] of Object.entries(only)) {
      const show = strategies.includes(strategy.value);
      document.querySelectorAll(".field-" + field + ", th.column-" + field).forEach(function (el) {
        el.style.display = show ? "" : "none";
      });
    }
  }
  strategy.addEventListener("change", update);
  document.addEventListener("formset:added", update);
  update();
})();
