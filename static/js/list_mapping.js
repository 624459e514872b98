// List mapping: highlight CRM items chosen twice while the admin picks (the server refuses them too).
(function () {
  "use strict";
  const selects = Array.from(document.querySelectorAll(".list-choice"));
  function mark() {
    const counts = {};
    selects.forEach(function (s) { if (s.value) counts[s.value] = (counts[s.value] || 0) + 1; });
    selects.forEach(function (s) { s.closest("tr").classList.toggle("row-error", Boolean(s.value) && counts[s.value] > 1); });
  }
  selects.forEach(function (s) { s.addEventListener("change", mark); });
})();
