// Behaviour shared by every page. The Content-Security-Policy allows no inline scripts or event handlers, so
// templates ask for it with data attributes, handled here for the page and for whatever htmx swaps in later.
(function () {
  "use strict";
  // Parts of a page that only work with JavaScript show (.js-only), their plain stand-ins hide (.no-js).
  document.documentElement.classList.add("js");

  // A dialog htmx brings in (data-modal) opens as a modal at once; closed (Esc, Cancel), it is gone.
  function openDialogs(root) {
    const dialogs = root.matches && root.matches("dialog[data-modal]") ? [root] : [];
    if (root.querySelectorAll) dialogs.push.apply(dialogs, root.querySelectorAll("dialog[data-modal]"));
    dialogs.forEach(function (dialog) {
      if (dialog.open) return;
      dialog.addEventListener("close", function () { dialog.remove(); });
      dialog.showModal();
    });
  }
  document.addEventListener("htmx:load", function (event) { openDialogs(event.detail.elt); });
  document.addEventListener("click", function (event) {
    const closer = event.target.closest && event.target.closest("[data-close-dialog]");
    if (closer && closer.closest("dialog")) closer.closest("dialog").close();
  });

  // Every htmx request that fails without an explanatory fragment still tells the user so.
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

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement || target instanceof HTMLSelectElement)) return;
    // data-submit-on-change: the choice is the whole form (a filter, the language, a switch).
    if (target.hasAttribute("data-submit-on-change") && target.form) {
      target.form.requestSubmit();
    }
    // data-check-all="name": a box that ticks or unticks every box of that name in its form.
    var name = target.getAttribute("data-check-all");
    if (name && target.form) {
      target.form.querySelectorAll("input[type=checkbox]").forEach(function (box) {
        if (box.name === name) box.checked = target.checked;
      });
    }
  });

  // data-confirm="question" on a form: sent only when the user agrees.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopPropagation();  // nor does htmx send it (its listener is on the form, after this one)
    }
  }, true);
})();
