// The administrators' pages: the customer form's list of domains (add and remove rows). The form works
// without this file too: it always ends with an empty field, and emptying a field removes its domain.
(function () {
  "use strict";

  var counter = 0;

  function renumber(list) {
    // Labels say "Domain 1", "Domain 2"… in the order shown, so a screen reader hears where it is.
    var rows = list.querySelectorAll(".domain-row");
    rows.forEach(function (row, index) {
      var label = row.querySelector("label");
      if (label) { label.textContent = "Domain " + (index + 1); }
    });
  }

  function addRow(list) {
    var template = document.getElementById("domain-row-template");
    if (!template) { return null; }
    var row = template.content.firstElementChild.cloneNode(true);
    counter += 1;
    var id = "domain-new-" + counter;
    row.querySelector("input").id = id;
    row.querySelector("label").setAttribute("for", id);
    list.appendChild(row);
    renumber(list);
    return row.querySelector("input");
  }

  document.addEventListener("click", function (event) {
    var adder = event.target.closest("[data-domain-add]");
    if (adder) {
      var list = adder.closest("fieldset").querySelector("[data-domain-rows]");
      var input = addRow(list);
      if (input) { input.focus(); }
      return;
    }
    var remover = event.target.closest("[data-domain-remove]");
    if (remover) {
      var row = remover.closest(".domain-row");
      var rows = row.parentElement;
      var next = row.nextElementSibling || row.previousElementSibling;
      if (rows.querySelectorAll(".domain-row").length === 1) {
        // The last row stays, empty: there is always a field to type a domain into.
        row.querySelector("input").value = "";
        row.querySelector("input").focus();
        return;
      }
      row.remove();
      renumber(rows);
      // Focus must not fall to the top of the page when the focused button disappears.
      var target = next ? next.querySelector("input") : null;
      if (target) { target.focus(); }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-domain-add]").forEach(function (button) { button.hidden = false; });
  });
})();
