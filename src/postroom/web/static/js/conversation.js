// The conversation page: the Reply | Note tabs, drafts kept in this browser, "Load images" for a mail's
// frame, and the size check of attached files before they are uploaded. Everything else is htmx.
(function () {
  "use strict";

  // -- Reply | Note tabs (WAI-ARIA tabs: arrow keys move between them) -----------------------------
  function selectTab(tab, focus) {
    var list = tab.closest('[role="tablist"]');
    list.querySelectorAll('[role="tab"]').forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) { panel.hidden = !selected; }
    });
    if (focus) { tab.focus(); }
  }

  document.addEventListener("click", function (event) {
    var tab = event.target.closest(".editor-tab");
    if (tab) {
      selectTab(tab, false);
      var panel = document.getElementById(tab.getAttribute("aria-controls"));
      var field = panel && panel.querySelector("textarea");
      if (field) { field.focus(); }
      return;
    }
    var loader = event.target.closest("[data-load-images]");
    if (loader) {
      loadImages(loader);
    }
  });

  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest(".editor-tab");
    if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) { return; }
    var tabs = Array.prototype.slice.call(tab.closest('[role="tablist"]').querySelectorAll('[role="tab"]'));
    var next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    event.preventDefault();
    selectTab(next, true);
  });

  // -- Drafts: what is typed survives a reload, until it is sent --------------------------------------
  function draftKey(field) {
    var form = field.form;
    return form ? form.getAttribute("data-draft-key") : null;
  }

  function store(key, value) {
    try {
      if (value) { window.localStorage.setItem(key, value); } else { window.localStorage.removeItem(key); }
    } catch (e) { /* storage full or disabled: the draft is simply not kept */ }
  }

  function restoreDrafts(root) {
    root.querySelectorAll("form[data-draft-key] textarea[data-draft]").forEach(function (field) {
      var key = draftKey(field);
      var saved = null;
      try { saved = key ? window.localStorage.getItem(key) : null; } catch (e) { saved = null; }
      if (saved && !field.value) {
        field.value = saved;
        var state = field.form.querySelector("[data-draft-state]");
        if (state) { state.textContent = "Draft restored"; }
      }
    });
  }

  document.addEventListener("input", function (event) {
    var field = event.target;
    if (field.matches && field.matches("textarea[data-draft]")) {
      var key = draftKey(field);
      if (key) { store(key, field.value); }
    }
  });

  // The server says a reply or note was accepted (HX-Trigger): its draft is done with.
  document.body.addEventListener("postroom:sent", function (event) {
    var kind = event.detail && (event.detail.value || event.detail);
    var form = document.getElementById(kind === "note" ? "note-form" : "reply-form");
    var key = form && form.getAttribute("data-draft-key");
    if (key) { store(key, ""); }
  });

  // -- Remote images: only on request, and only for the frame asked for -------------------------------
  var loaded = {};

  function loadImages(button) {
    var frame = document.getElementById(button.getAttribute("aria-controls"));
    if (!frame) { return; }
    loaded[frame.id] = button.getAttribute("data-load-images");
    frame.src = loaded[frame.id];
    var note = button.closest(".remote-note");
    if (note) {
      note.textContent = "Remote images loaded.";
      note.classList.add("remote-loaded");
    }
  }

  function reapplyImages(root) {
    Object.keys(loaded).forEach(function (id) {
      var frame = document.getElementById(id);
      // Only a frame that a swap put back without its pictures: others would reload for nothing.
      if (frame && root.contains(frame) && frame.getAttribute("src") !== loaded[id]) {
        var button = root.querySelector('[data-load-images][aria-controls="' + id + '"]');
        if (button) { loadImages(button); } else { frame.src = loaded[id]; }
      }
    });
  }

  // -- Attachments: over the inbox's limit is said before anything is uploaded ---------------------
  function sizeProblem(input) {
    var limit = parseInt(input.getAttribute("data-max-bytes") || "0", 10);
    if (!limit || !input.files) { return ""; }
    var total = 0;
    for (var i = 0; i < input.files.length; i++) { total += input.files[i].size; }
    if (total <= limit) { return ""; }
    var mb = function (n) { return (n / 1048576).toFixed(1) + " MB"; };
    return "The files add up to " + mb(total) + ", over this inbox's limit of " + mb(limit) + ". Choose smaller files.";
  }

  function showSizeProblem(input) {
    var problem = sizeProblem(input);
    var error = document.getElementById(input.id + "-error");
    if (error) {
      error.textContent = problem;
      error.hidden = !problem;
    }
    if (problem) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    return problem;
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("input[type=file][data-max-bytes]")) {
      showSizeProblem(event.target);
    }
  });

  document.body.addEventListener("htmx:confirm", function (event) {
    var form = event.target;
    if (form.id !== "reply-form") { return; }
    var input = form.querySelector("input[type=file][data-max-bytes]");
    if (input && showSizeProblem(input)) {
      event.preventDefault();
      input.focus();
    }
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    reapplyImages(document);
    restoreDrafts(event.target.closest ? (event.target.closest("form") || document) : document);
  });

  restoreDrafts(document);
})();
