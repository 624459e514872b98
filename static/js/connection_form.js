// The connection form, on its own page or in the dialog *Define new ERP connection* over the Sync tab: OK is
// enabled only while the configuration shown is exactly what last passed "Test ERP connection" and every
// mandatory field is filled (the server checks the same rule); the visibility's users and groups are chosen in a
// picker with a search box. Every form that htmx brings in is set up as it arrives.
(function () {
  "use strict";

  function configSnapshot(form, withoutPasswords) {
    const values = [];
    form.querySelectorAll("[name^='cfg-'], select[name='connector']").forEach(function (input) {
      if (withoutPasswords && input.type === "password") return;
      const value = input.type === "checkbox" ? String(input.checked) : input.value;
      values.push(input.name + "=" + value);
    });
    return values.join("\n");
  }

  function mandatoryFilled(form) {
    return Array.from(form.querySelectorAll("#config-fields [required]")).every(function (input) {
      return input.type === "checkbox" ? input.checked : input.value.trim() !== "";
    });
  }

  function update(form) {
    const state = form.erpsyncState;
    const ok = form.querySelector("#ok-button");
    const hint = form.querySelector("#ok-hint");
    const now = configSnapshot(form);
    let reason = "";
    if (!state.locked && now !== state.untouched) {
      // Back with errors elsewhere, the passwords must be typed again (a page never holds them); the other values
      // are still the tested ones, and the server checks that the passwords are too.
      const stillTested = state.testedBefore !== null && state.testedBefore === configSnapshot(form, true);
      if (!mandatoryFilled(form)) reason = hint.dataset.mandatory;
      else if (stillTested && state.tested === null) reason = "";
      else if (state.tested === null) reason = hint.dataset.untested;
      else if (state.tested !== now) reason = hint.dataset.changed;
    }
    ok.disabled = reason !== "";
    hint.textContent = reason;
  }

  function toggleVisibility(form) {
    const chosen = form.querySelector("input[name='visibility']:checked");
    form.querySelectorAll("[data-visibility]").forEach(function (block) {
      block.hidden = chosen !== null && block.dataset.visibility !== chosen.value;
    });
  }

  // The picker of users and groups: a dialog with a search box; each chosen one is a row with its two rights.
  function chosenValues(form) {
    return Array.from(form.querySelectorAll("#grant-rows .grant-row:not(.no-js) input[name$='-principal']"))
      .map(function (input) { return input.value; });
  }

  function summarise(form) {
    const summary = form.querySelector("[data-grant-summary]");
    if (!summary) return;
    const names = Array.from(form.querySelectorAll("#grant-rows .grant-row:not(.no-js) [data-grant-label]"))
      .map(function (label) { return label.textContent; });
    summary.textContent = names.length ? names.join(", ") : summary.dataset.none;
  }

  function filterPicker(form) {
    const search = form.querySelector("[data-picker-search]");
    const text = search.value.trim().toLowerCase();
    const chosen = chosenValues(form);
    let shown = 0;
    form.querySelectorAll("[data-picker-results] li").forEach(function (item) {
      const match = !chosen.includes(item.dataset.value) && item.dataset.label.toLowerCase().includes(text);
      item.hidden = !match || shown >= 20;
      if (!item.hidden) shown += 1;
    });
    form.querySelector("[data-picker-nothing]").hidden = shown > 0;
  }

  function addGrant(form, item) {
    const total = form.querySelector("input[name$='-TOTAL_FORMS']");
    const html = form.querySelector("#grant-template").innerHTML.replace(/__prefix__/g, total.value);
    const rows = form.querySelector("#grant-rows");
    rows.insertAdjacentHTML("beforeend", html);
    const row = rows.lastElementChild;
    row.querySelector("input[name$='-principal']").value = item.dataset.value;
    row.querySelector("[data-grant-label]").textContent = item.dataset.label;
    total.value = String(Number(total.value) + 1);
    filterPicker(form);
    summarise(form);
  }

  function setUpPicker(form) {
    const picker = form.querySelector("[data-picker]");
    if (!picker) return;
    // Without JavaScript the picker is part of the form; with it, a dialog the link opens.
    const dialog = document.createElement("dialog");
    dialog.className = "dialog";
    dialog.id = "grant-picker-dialog";
    dialog.setAttribute("aria-labelledby", "grant-picker-title");
    picker.parentNode.insertBefore(dialog, picker);
    dialog.appendChild(picker);
    const title = picker.querySelector("h3");
    if (title) title.id = "grant-picker-title";
    form.querySelectorAll("#grant-rows .grant-row.no-js").forEach(function (row) { row.remove(); });
    form.querySelector("[data-open-picker]").addEventListener("click", function () {
      filterPicker(form);
      dialog.showModal();
      picker.querySelector("[data-picker-search]").focus();
    });
    picker.querySelector("[data-picker-search]").addEventListener("input", function () { filterPicker(form); });
    picker.querySelector("[data-picker-search]").addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault();  // Enter picks nothing and must not send the form
    });
    picker.addEventListener("click", function (event) {
      const target = event.target;
      if (target.closest("[data-picker-add]")) addGrant(form, target.closest("li"));
      if (target.closest("[data-grant-remove]")) {
        target.closest("tr").remove();
        filterPicker(form);
        summarise(form);
      }
      if (target.closest("[data-picker-done]")) dialog.close();
    });
    summarise(form);
  }

  function setUp(form) {
    if (form.erpsyncState) return;
    form.erpsyncState = {
      locked: form.dataset.locked === "true",
      tested: null,
      pending: null,
      // An edited connection whose configuration is untouched needs no new test.
      untouched: form.dataset.saved === "true" ? configSnapshot(form) : null,
    };
    form.addEventListener("input", function () { update(form); });
    form.addEventListener("change", function (event) {
      if (event.target.name === "visibility") {
        toggleVisibility(form);
        const opener = form.querySelector("[data-open-picker]");
        if (event.target.value === "specified" && opener && chosenValues(form).length === 0) opener.click();
      }
      refreshDependentLists(form, event.target.name);
      update(form);
    });
    // Back with errors elsewhere, the values shown still carry their passed test.
    form.erpsyncState.testedBefore = form.querySelector("#test-result [data-passed='true']")
      ? configSnapshot(form, true) : null;
    setUpPicker(form);
    toggleVisibility(form);
    update(form);
  }

  // A configuration list that depends on other fields (data-depends-on, their keys) is read again, with the values
  // in the form, when one of them changes; the request is a POST, so a password typed is in no address.
  function refreshDependentLists(form, name) {
    if (!name || name.indexOf("cfg-") !== 0) return;
    const key = name.slice(4);
    form.querySelectorAll("[data-depends-on]").forEach(function (box) {
      if (box.dataset.dependsOn.split(" ").indexOf(key) >= 0) htmx.trigger(box, "config-values-changed");
    });
  }

  document.body.addEventListener("htmx:beforeRequest", function (event) {
    const elt = event.detail.elt;
    const form = elt && elt.closest && elt.closest("#connection-form");
    if (form && form.erpsyncState && elt.id === "test-button") form.erpsyncState.pending = configSnapshot(form);
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    const form = target.closest && target.closest("#connection-form");
    if (!form || !form.erpsyncState) return;
    if (target.id === "test-result") {
      const result = target.querySelector("[data-passed]");
      form.erpsyncState.tested = result && result.dataset.passed === "true" ? form.erpsyncState.pending : null;
    } else if (target.id === "config-section") {
      form.erpsyncState.tested = null;  // another connector: its fields must be tested afresh
      form.erpsyncState.testedBefore = null;
      form.erpsyncState.untouched = null;
    }
    update(form);
  });
  document.addEventListener("htmx:load", function (event) {
    const root = event.detail.elt;
    const form = root.id === "connection-form" ? root : root.querySelector && root.querySelector("#connection-form");
    if (form) setUp(form);
  });
  const form = document.getElementById("connection-form");
  if (form) setUp(form);
})();
