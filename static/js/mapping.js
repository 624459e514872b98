// Field mapping: a synced field (CRM field and direction chosen) cannot also be shown live on the ERP tab,
// so that box is disabled while the row syncs, with the reason as its title and a note beside it. The server
// enforces the same rule. Unmapping a field clears its direction.
(function () {
  "use strict";
  document.querySelectorAll("#mapping-form tr[data-key]").forEach(function (row) {
    const key = row.dataset.key;
    const crm = row.querySelector("[name='crm-" + key + "']");
    const direction = row.querySelector("[name='dir-" + key + "']");
    const tab = row.querySelector("[name='tab-" + key + "']");
    const why = document.getElementById("tab-why-" + key);
    const hold = row.querySelector("[name='hold-" + key + "']");
    const holdWhy = document.getElementById("hold-why-" + key);
    function update() {
      const syncs = crm.value !== "" && direction.value !== "";
      tab.disabled = syncs;
      if (syncs) {
        tab.checked = false;
        tab.title = tab.dataset.why || "";
      } else {
        tab.removeAttribute("title");
      }
      if (why) why.hidden = !syncs;
      // Conflicts can only be held on a field synced both ways.
      if (hold) {
        const both = crm.value !== "" && direction.value === "both";
        hold.disabled = !both;
        if (!both) {
          hold.checked = false;
          hold.title = hold.dataset.why || "";
        } else {
          hold.removeAttribute("title");
        }
        if (holdWhy) holdWhy.hidden = both;
      }
    }
    // A field that no longer maps to a CRM field has no direction either (it may have had a suggested one).
    crm.addEventListener("change", function () {
      if (crm.value === "") direction.value = "";
      update();
    });
    direction.addEventListener("change", update);
    update();
  });
})();
