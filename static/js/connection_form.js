// The connection form: OK is enabled only while the configuration shown is exactly what last passed
// "Test ERP connection" and every mandatory field is filled. The server checks the same rule.
(function () {
  "use strict";
  const form = document.getElementById("connection-form");
  if (!form) return;
  const ok = document.getElementById("ok-button");
  const hint = document.getElementById("ok-hint");
  const locked = form.dataset.locked === "true";
  let tested = null;
  let pending = null;

  function configSnapshot() {
    const values = [];
    form.querySelectorAll("[name^='cfg-'], select[name='connector']").forEach(function (input) {
      const value = input.type === "checkbox" ? String(input.checked) : input.value;
      values.push(input.name + "=" + value);
    });
    return values.join("\n");
  }

  // An edited connection whose configuration is untouched needs no new test.
  let untouched = form.dataset.saved === "true" ? configSnapshot() : null;

  function mandatoryFilled() {
    return Array.from(form.querySelectorAll("#config-fields [required]")).every(function (input) {
      return input.type === "checkbox" ? input.checked : input.value.trim() !== "";
    });
  }

  function update() {
    const now = configSnapshot();
    let reason = "";
    if (!locked && now !== untouched) {
      if (!mandatoryFilled()) reason = hint.dataset.mandatory;
      else if (tested === null) reason = hint.dataset.untested;
      else if (tested !== now) reason = hint.dataset.changed;
    }
    ok.disabled = reason !== "";
    hint.textContent = reason;
  }

  function toggleVisibility() {
    const chosen = form.querySelector("input[name='visibility']:checked");
    form.querySelectorAll("[data-visibility]").forEach(function (block) {
      block.hidden = chosen !== null && block.dataset.visibility !== chosen.value;
    });
  }

  document.getElementById("add-grant").addEventListener("click", function () {
    const total = form.querySelector("input[name='grant-TOTAL_FORMS']");
    const html = document.getElementById("grant-template").innerHTML.replace(/__prefix__/g, total.value);
    document.getElementById("grant-rows").insertAdjacentHTML("beforeend", html);
    total.value = String(Number(total.value) + 1);
  });

  form.addEventListener("input", update);
  form.addEventListener("change", function (event) {
    if (event.target.name === "visibility") toggleVisibility();
    update();
  });
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "test-button") pending = configSnapshot();
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (target.id === "test-result") {
      const result = target.querySelector("[data-passed]");
      tested = result && result.dataset.passed === "true" ? pending : null;
    } else if (target.id === "config-section") {
      tested = null;  // another connector: its fields must be tested afresh
      untouched = null;
    }
    update();
  });
  toggleVisibility();
  update();
})();
