// Every htmx request that fails without an explanatory fragment still tells the user so.
(function () {
  "use strict";
  function show(text) {
    var box = document.getElementById("request-problem");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
  }
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? String(event.detail.xhr.status) : "?";
    show(document.body.dataset.requestFailed.replace("STATUS", status));
  });
  document.addEventListener("htmx:sendError", function () {
    show(document.body.dataset.requestUnsent);
  });
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("request-problem");
    if (box) box.hidden = true;
  });
})();
