// Model add form (templates/admin/providers/model/change_form.html): under "Fill from
// the price catalogue", what the catalogue has for the chosen provider and upstream id
// (and the date it was checked), as the editor types. The catalogue URL comes from the
// script tag's data-catalogue-url (a static file, so the admin's CSP needs no inline script).
(function () {
  "use strict";
  const url = document.currentScript && document.currentScript.dataset.catalogueUrl;
  const box = document.querySelector(".field-fill_from_catalogue");
  if (!box || !url) return;
  const hint = document.createElement("div");
  hint.className = "help";
  hint.id = "catalogue-hint";
  box.appendChild(hint);
  const field = (name) => document.getElementById("id_" + name);
  let timer = null;
  function look() {
    const provider = field("provider") ? field("provider").value : "";
    const model = (field("upstream_id").value || field("name").value).trim();
    if (!provider || !model) { hint.textContent = ""; return; }
    fetch(url + "?" + new URLSearchParams({provider, model}), {credentials: "same-origin"}).then((r) => r.json())
      .then((d) => { hint.textContent = d.text; })
      .catch(() => { hint.textContent = ""; });
  }
  for (const name of ["provider", "name", "upstream_id"]) {
    const el = field(name);
    if (el) el.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(look, 250); });
    if (el) el.addEventListener("change", look);
  }
  look();
})();
