// Settings → Inboxes: show only the fields of the chosen mode, outbound way and sign-in.
// The server draws the form with the same rules (views/settings_inboxes.rules), so this only
// follows the admin's changes; without JavaScript a "Show the fields for this mode" button does it.
(function () {
  "use strict";

  function rules(form) {
    var mode = form.elements.mode ? form.elements.mode.value : "imap";
    var outbound = form.elements.outbound ? form.elements.outbound.value : "smtp";
    var oauthBox = form.elements.oauth_enabled;
    var oauth = Boolean(oauthBox && oauthBox.checked);
    var reads = mode === "imap" || mode === "pop3";
    var smtp = outbound === "smtp";
    var signsIn = reads || smtp;
    return {
      "reads": reads,
      "imap": mode === "imap",
      "pop3": mode === "pop3",
      "forwarding": mode === "forwarding",
      "webhook": mode === "webhook",
      "smtp": smtp,
      "sendgrid": outbound === "sendgrid",
      "signs-in": signsIn,
      "password": signsIn && !oauth,
      "smtp-password": smtp && !oauth,
      "oauth": signsIn && oauth,
      "imap-smtp": mode === "imap" && smtp
    };
  }

  function apply(form) {
    var shown = rules(form);
    form.querySelectorAll("[data-when]").forEach(function (element) {
      var rule = element.getAttribute("data-when");
      if (Object.prototype.hasOwnProperty.call(shown, rule)) {
        element.hidden = !shown[rule];
      }
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof Element) || !target.matches("[data-inbox-switch]")) { return; }
    var form = target.closest("form[data-inbox-form]");
    if (form) { apply(form); }
  });

  function init() {
    document.querySelectorAll("form[data-inbox-form]").forEach(apply);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
