/* Time on case without the time the reader was away: the page hidden (another tab, a locked
   screen, the page closed and opened again later), or the page in view with nobody at it. A
   reader counts as present for the form's data-idle-seconds (CASE_IDLE_SECONDS) after each
   touch, click, key, wheel or pointer move: a long look at the image without moving counts;
   beyond it, the time until the next input does not. The milliseconds away go with the answer
   in the form's hidden_ms field; the server keeps its own clock and never counts more time
   away than the case was open. Kept per case token in localStorage, so a closed and reopened
   page still counts its absence; the entry is removed once the answer is sent. */
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
    var idleMs = 1000 * (Number(form.getAttribute("data-idle-seconds")) || 0);
    var lastInput = Date.now(); // while the page is in view

    function idleExcess(at) {
      // The time since the last input beyond the grace period (0 without an idle limit).
      if (!idleMs || hiddenSince !== null || at - lastInput <= idleMs) {
        return 0;
      }
      return at - lastInput - idleMs;
    }

    function total() {
      var at = Date.now();
      return hidden + (hiddenSince === null ? 0 : at - hiddenSince) + idleExcess(at);
    }

    function present() {
      var at = Date.now();
      hidden += idleExcess(at);
      lastInput = at;
    }
    ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "scroll"].forEach(function (name) {
      window.addEventListener(name, present, { passive: true, capture: true });
    });

    function write() {
      form.elements.hidden_ms.value = String(Math.max(0, Math.round(total())));
    }

    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") {
        hidden += idleExcess(Date.now()); // away before the page went out of view
        hiddenSince = Date.now();
      } else if (hiddenSince !== null) {
        hidden += Date.now() - hiddenSince;
        hiddenSince = null;
        lastInput = Date.now(); // coming back to the page is being there
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
        lastInput = Date.now();
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
