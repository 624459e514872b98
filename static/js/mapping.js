// Field mapping: a synced field (CRM field and direction chosen) cannot also be shown live on the ERP tab,
// so that box is disabled while the row syncs. The server enforces the same rule.
(function () {
  "use strict";
  document.querySelectorAll("#mapping-form tr[data-key]").forEach(function (row) {
    const key = row.dataset.key;
    const crm = row.querySelector("[name='crm-" + key + "']");
    const direction = row.querySelector("[name='dir-" + key + "']");
    const tab = row.querySelector("[name='tab-" + key + "']");
    function update() {
      const syncs = crm.value !== "" && direction.value !== "";
      tab.disabled = syncs;
      if (syncs) tab.checked = false;
    }
    crm.addEventListener("change", update);
    direction.addEventListener("change", update);
    update();
  });
})();
