/* Time on case without the time the page was hidden: another tab, a locked screen, or the
   page closed and opened again later. The hidden milliseconds go with the answer in the form's
   hidden_ms field; the server keeps its own clock and never counts more hidden time than the
   case was open. Kept per case token in localStorage, so a closed and reopened page still
   counts its absence; the entry is removed once the answer is sent. */
(function () {
  "use strict";

  var PREFIX = "secbir-hidden:";

  function start() {
    var form = document.querySelector("form.answer");
    if (!form || !form.elements.token || !form.elements.hidden_ms) {
      return;
    }
    var key = PREFIX + form.elements.token.value;
    var store = null;
    try {
      store = window.localStorage;
    } catch (error) {
      store = null; // storage blocked: only this page's hidden time is counted
    }

    function load() {
      try {
        return JSON.parse((store && store.getItem(key)) || "{}");
      } catch (error) {
        return {};
      }
    }

    function save(state) {
      try {
        if (store) {
          store.setItem(key, JSON.stringify(state));
        }
      } catch (error) {
        /* quota or privacy mode: keep counting in the page */
      }
    }

    var state = load();
    // A page sent back with an error keeps the hidden time it already counted.
    var hidden = Math.max(Number(state.hidden) || 0, Number(form.elements.hidden_ms.value) || 0);
    // The page was left (closed, navigated away) at `left`: that absence is hidden time.
    if (state.left && Date.now() > state.left) {
      hidden += Date.now() - state.left;
    }
    var hiddenSince = document.visibilityState === "hidden" ? Date.now() : null;

    function total() {
      return hidden + (hiddenSince === null ? 0 : Date.now() - hiddenSince);
    }

    function write() {
      form.elements.hidden_ms.value = String(Math.max(0, Math.round(total())));
    }

    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") {
        hiddenSince = Date.now();
      } else if (hiddenSince !== null) {
        hidden += Date.now() - hiddenSince;
        hiddenSince = null;
      }
      write();
    });
    var sending = false;
    window.addEventListener("pagehide", function () {
      if (!sending) {
        save({ hidden: total(), left: Date.now() });
      }
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        // Back from the history cache: count the absence, then go on counting.
        var back = load();
        if (back.left && Date.now() > back.left) {
          hidden = (Number(back.hidden) || 0) + (Date.now() - back.left);
        }
        sending = false;
        write();
      }
    });
    form.addEventListener("submit", function () {
      write();
      sending = true;
      try {
        if (store) {
          store.removeItem(key);
        }
      } catch (error) {
        /* nothing to clean */
      }
    });
    write();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
