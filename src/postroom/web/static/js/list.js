// The conversation list's keyboard: j/k move the selection (focus on the row's link), Enter opens it
// (the link itself), e resolves and a assigns to me (the row's own buttons, so keys and clicks take
// one path). Keys are left alone while typing or with a modifier. The selection survives the list's
// refreshes (live updates, actions): the same conversation, or the row that took its place.
(function () {
  "use strict";
  var selectedId = null;
  var selectedIndex = -1;
  var focusInList = false;

  function list() { return document.getElementById("conversation-list"); }
  function rows() {
    var root = list();
    return root ? Array.prototype.slice.call(root.querySelectorAll(".crow")) : [];
  }

  function mark(row) {
    rows().forEach(function (other) { other.classList.toggle("is-selected", other === row); });
    if (row) {
      selectedId = row.getAttribute("data-id");
      selectedIndex = rows().indexOf(row);
    }
  }

  function select(row) {
    if (!row) { return; }
    mark(row);
    var link = row.querySelector(".crow-link");
    if (link) {
      link.focus();
      link.scrollIntoView({ block: "nearest" });
    }
  }

  function current() {
    var active = document.activeElement;
    var row = active && active.closest ? active.closest("#conversation-list .crow") : null;
    if (row) { return row; }
    if (selectedId !== null) {
      return rows().filter(function (r) { return r.getAttribute("data-id") === selectedId; })[0] || null;
    }
    return null;
  }

  function typing(target) {
    if (!target || !target.closest) { return false; }
    return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true'], dialog"));
  }

  function act(row, action, already) {
    if (!row) { return; }
    var button = row.querySelector('[data-action="' + action + '"]');
    if (button) {
      button.click();
    } else if (window.postroomToast) {
      window.postroomToast(already);
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    if (!list()) { return; }
    var all = rows();
    var row = current();
    var index = row ? all.indexOf(row) : -1;
    switch (event.key) {
      case "j":
        event.preventDefault();
        select(all[Math.min(index + 1, all.length - 1)]);
        break;
      case "k":
        event.preventDefault();
        select(all[Math.max(index - 1, 0)]);
        break;
      case "Enter":
        // On the row's link Enter opens it natively; here only when the focus was lost (a refresh).
        if (row && (document.activeElement === document.body || document.activeElement === null)) {
          event.preventDefault();
          var link = row.querySelector(".crow-link");
          if (link) { window.location.assign(link.href); }
        }
        break;
      case "e":
        event.preventDefault();
        act(row, "resolve", "Already resolved");
        break;
      case "a":
        event.preventDefault();
        act(row, "assign", "Already assigned to you");
        break;
      default:
        return;
    }
  });

  // Tab and clicks select too, so that e and a act on the row the user is on.
  document.addEventListener("focusin", function (event) {
    var row = event.target.closest ? event.target.closest("#conversation-list .crow") : null;
    if (row) { mark(row); }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "conversation-list") {
      var active = document.activeElement;
      focusInList = Boolean(active && active.closest && active.closest("#conversation-list"));
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    // After an outerHTML swap the event comes from the new list (detail.target is the old one, detached).
    var root = list();
    var swapped = event.detail && event.detail.target && event.detail.target.id === "conversation-list";
    if (!root || !(swapped || event.target === root)) { return; }
    if (selectedId === null) { return; }
    var all = rows();
    var row = all.filter(function (r) { return r.getAttribute("data-id") === selectedId; })[0];
    if (!row && all.length) {
      // The selected conversation left this view (resolved, assigned away): take the one now in its place.
      row = all[Math.min(Math.max(selectedIndex, 0), all.length - 1)];
    }
    if (!row) { return; }
    var active = document.activeElement;
    if (focusInList || !active || active === document.body) {
      select(row);
    } else {
      mark(row);
    }
    focusInList = false;
  });

  // Messages of the list's actions (the server's HX-Trigger "list-toast").
  document.body.addEventListener("list-toast", function (event) {
    if (window.postroomToast && event.detail && event.detail.text) { window.postroomToast(event.detail.text); }
  });
})();
