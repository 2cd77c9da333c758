// Grantry admin UI behaviour: the generic menu's selection rules, confirmations,
// key/value rows and the filter builder. Served from the binary (CSP script-src 'self').
(function () {
  "use strict";
  var rowCounter = 0;

  function selected() {
    return Array.from(document.querySelectorAll("input.select:checked")).map(function (box) { return box.value; });
  }

  // With one record selected, Show, Edit and JSON appear; with none or several they go.
  function refreshMenu() {
    var ids = selected();
    document.querySelectorAll("[data-needs=one]").forEach(function (el) { el.hidden = ids.length !== 1; });
    var all = document.getElementById("select-all");
    var boxes = document.querySelectorAll("input.select");
    if (all) { all.checked = boxes.length > 0 && ids.length === boxes.length; }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll("input.select").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.id === "select-all" || target.classList.contains("select")) { refreshMenu(); }
    if (target.hasAttribute("data-autosubmit")) { target.form.submit(); }
    // Import: a chosen file fills the text area it names.
    if (target.type === "file" && target.hasAttribute("data-fills") && target.files.length) {
      target.files[0].text().then(function (text) { document.getElementById(target.getAttribute("data-fills")).value = text; });
    }
  });

  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-action]");
    if (!el) { return; }
    var action = el.getAttribute("data-action");
    var menu = document.getElementById("menu");
    var base = menu ? menu.getAttribute("data-base") : "";
    var ids = selected();
    if (action === "show" || action === "edit" || action === "json") {
      event.preventDefault();
      var suffix = action === "show" ? "" : "/" + action;
      window.location.href = base + "/" + encodeURIComponent(ids[0]) + suffix;
    } else if (action === "delete" || action === "export") {
      event.preventDefault();
      var form = document.getElementById(action + "-form");
      form.querySelector("input[name=ids]").value = ids.join(",");
      if (action === "delete") {
        var singular = menu.getAttribute("data-singular");
        var plural = menu.getAttribute("data-plural");
        var message;
        if (ids.length > 0) {
          message = ids.length + " " + (ids.length === 1 ? singular : plural) + " will be deleted";
        } else {
          var total = menu.getAttribute("data-total");
          message = "All " + total + " found " + plural + " will be deleted";
        }
        if (!window.confirm(message + ". Continue?")) { return; }
      }
      form.submit();
    } else if (action === "add-row") {
      event.preventDefault();
      var list = el.closest(".kv");
      var template = list.querySelector("template");
      var rows = list.querySelector(".kv-rows");
      // Rows are ordered by index; a new row gets one above every existing index.
      rowCounter += 1;
      var index = Date.now() * 1000 + rowCounter;
      var html = template.innerHTML.replace(/__INDEX__/g, String(index));
      rows.insertAdjacentHTML("beforeend", html);
    } else if (action === "remove-row") {
      event.preventDefault();
      el.closest(".kv-row").remove();
    } else if (action === "add-condition") {
      event.preventDefault();
      var conditions = document.getElementById("conditions");
      var first = conditions.querySelector(".condition");
      var copy = first.cloneNode(true);
      copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      conditions.appendChild(copy);
    } else if (action === "remove-condition") {
      event.preventDefault();
      var all = document.querySelectorAll("#conditions .condition");
      if (all.length > 1) { el.closest(".condition").remove(); } else { el.closest(".condition").querySelector("input").value = ""; }
    } else if (action === "toggle-filters") {
      event.preventDefault();
      var panel = document.getElementById("filters");
      panel.hidden = !panel.hidden;
    } else if (action === "close-layer") {
      event.preventDefault();
      el.closest(".layer").remove();
    } else if (action === "ref-clear") {
      event.preventDefault();
      var box = el.closest(".ref");
      setReference(box.querySelector(".ref-id"), "", "");
    } else if (action === "ref-edit") {
      event.preventDefault();
      var refBox = el.closest(".ref");
      var hidden = refBox.querySelector(".ref-id");
      if (!hidden.value) { return; }
      var url = "/ui/" + refBox.getAttribute("data-kind") + "/" + encodeURIComponent(hidden.value) +
        "/edit?nested=1&for=" + encodeURIComponent(hidden.id);
      window.htmx.ajax("GET", url, { target: "#layers", swap: "beforeend" });
    } else if (action === "navigate") {
      event.preventDefault();
      window.location.href = el.getAttribute("data-href");
    }
  });

  // The filter builder submits as the list's query string: field[op]=value.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "filter-form") { return; }
    event.preventDefault();
    var params = new URLSearchParams();
    form.querySelectorAll(".condition").forEach(function (row) {
      var field = row.querySelector("[name=field]").value;
      var op = row.querySelector("[name=op]").value;
      var value = row.querySelector("[name=value]").value;
      if (field && value !== "") { params.append(op === "eq" ? field : field + "[" + op + "]", value); }
    });
    var perPage = form.getAttribute("data-per-page");
    if (perPage) { params.set("per_page", perPage); }
    window.location.href = form.getAttribute("action") + "?" + params.toString();
  });

  // A reference picker: the label is typed, the id travels in the hidden input.
  function setReference(hidden, id, label) {
    var changed = hidden.value !== id;
    hidden.value = id;
    var text = document.getElementById(hidden.id + "-label");
    if (text && label !== null) { text.value = label; }
    if (changed) { hidden.dispatchEvent(new Event("change", { bubbles: true })); }
  }

  document.addEventListener("input", function (event) {
    var text = event.target;
    if (!text.classList || !text.classList.contains("ref-label")) { return; }
    var hidden = text.closest(".ref").querySelector(".ref-id");
    var match = Array.from(text.list ? text.list.options : []).find(function (o) { return o.value === text.value; });
    setReference(hidden, match ? match.getAttribute("data-id") : "", null);
  });

  // A scopes picker follows the client: new choices, nothing selected.
  document.addEventListener("change", function (event) {
    var hidden = event.target;
    if (!hidden.classList || !hidden.classList.contains("ref-id")) { return; }
    document.querySelectorAll("select[data-follows='" + hidden.id + "']").forEach(function (select) {
      select.innerHTML = "";
      if (!hidden.value) { return; }
      fetch(select.getAttribute("data-choices") + encodeURIComponent(hidden.value), { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) { select.innerHTML = html; });
    });
  });

  // A record saved in a stacked form fills in the reference that opened it.
  document.addEventListener("grantry:saved", function (event) {
    var detail = event.detail || {};
    var hidden = document.getElementById(detail.for);
    if (hidden) { setReference(hidden, detail.id, detail.label); }
  });

  document.addEventListener("DOMContentLoaded", refreshMenu);
})();
