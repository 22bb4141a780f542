// Postroom's plain JavaScript, for what htmx cannot do alone. Loaded as a file (the CSP forbids inline
// script); every behaviour hangs off data-* attributes so templates stay free of code.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  window.postroomCsrf = csrfToken;

  // <button data-dialog-open="id"> opens <dialog id="id">; [data-dialog-close] closes its dialog.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog-open]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog-open"));
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.showModal();
      }
      return;
    }
    var closer = event.target.closest("[data-dialog-close]");
    if (closer) {
      var parent = closer.closest("dialog");
      if (parent) { event.preventDefault(); parent.close(); }
      return;
    }
    // <button data-copy="text"> copies the text and says so.
    var copier = event.target.closest("[data-copy]");
    if (copier && navigator.clipboard) {
      event.preventDefault();
      navigator.clipboard.writeText(copier.getAttribute("data-copy")).then(function () { toast("Copied"); });
    }
  });

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) { return; }
    var item = document.createElement("div");
    item.className = "toast";
    item.textContent = text;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 3000);
  }
  window.postroomToast = toast;
})();
