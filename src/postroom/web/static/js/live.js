// Live updates for any page: one EventSource on /events (see web/views/events.py) whose messages
// become events on document.body, so that parts of pages refresh themselves with htmx alone.
//
// The hook, for any page that loads this file:
//   <div id="x" data-live="conversations" hx-get="/this/page" hx-trigger="live-conversations from:body">
//   <div id="y" data-live="connections" hx-get="/settings/inboxes" hx-trigger="live-connections from:body">
// "conversations": a conversation was created or changed (new mail, a reply, a status, an assignee);
// "connections": a connection was added, removed, edited, or its status changed. event.detail is the
// message's small JSON data. data-live only documents the intent: the hx-trigger does the work.
(function () {
  "use strict";
  if (typeof window.EventSource !== "function") { return; }
  var source = null;

  function fire(name, message) {
    var detail = {};
    try { detail = JSON.parse(message.data || "{}"); } catch (ignored) { detail = {}; }
    document.body.dispatchEvent(new CustomEvent(name, { bubbles: true, detail: detail }));
  }

  function open() {
    if (source) { return; }
    source = new EventSource("/events");
    source.addEventListener("conversations", function (message) { fire("live-conversations", message); });
    source.addEventListener("connections", function (message) { fire("live-connections", message); });
    // The browser reconnects by itself after a network error or when the server ends a stream (the
    // server sends "retry"); a stream refused outright (signed out) is closed by the browser for good.
  }

  function close() {
    if (source) { source.close(); source = null; }
  }

  // Leaving the page (or the browser keeping it in its back/forward cache) ends the stream, so that
  // the server's loop for it ends too; coming back opens a new one.
  window.addEventListener("pagehide", close);
  window.addEventListener("pageshow", open);
  open();
  window.postroomLive = { open: open, close: close };
})();
