/* The survey's little JavaScript: keyboard shortcuts (and the reader's switch for them), one
   submission per click and local times; the image viewer is viewer.js. Everything also works
   without it; the server is the guard. */
(function () {
  "use strict";

  // Show times in the reader's own time zone next to the UTC time the server wrote.
  function showLocalTimes() {
    document.querySelectorAll("time[data-local]").forEach(function (element) {
      var moment = new Date(element.getAttribute("datetime"));
      if (isNaN(moment.getTime())) {
        return;
      }
      var local = document.createElement("span");
      local.className = "local-time";
      local.textContent =
        " (your local time: " +
        moment.toLocaleString(undefined, { dateStyle: "full", timeStyle: "short" }) +
        ")";
      element.insertAdjacentElement("afterend", local);
    });
  }

  // The reader's switch for the single-key shortcuts, kept with their account: sent in the
  // background so that a class already chosen stays chosen (without script, a plain POST).
  function setUpShortcutSwitch(root) {
    var form = document.querySelector("form[data-shortcut-form]");
    if (!form || !window.fetch) {
      return;
    }
    var button = form.querySelector("button");
    var state = form.querySelector("#shortcut-state");
    var enabled = form.querySelector("input[name=enabled]");
    state.setAttribute("aria-live", "polite");

    function show(on) {
      root.dataset.shortcuts = on ? "on" : "off";
      root.classList.toggle("no-shortcuts", !on);
      enabled.value = on ? "0" : "1";
      button.textContent = on ? "Turn single-key shortcuts off" : "Turn single-key shortcuts on";
      state.textContent = "(single-key shortcuts are " + (on ? "on" : "off") + ")";
      document.querySelectorAll("input[data-shortcut]").forEach(function (input) {
        if (on) {
          input.setAttribute("aria-keyshortcuts", input.dataset.shortcut.toUpperCase());
        } else {
          input.removeAttribute("aria-keyshortcuts");
        }
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(response.status);
          }
          return response.json();
        })
        .then(function (data) {
          show(data.shortcuts);
        })
        .catch(function () {
          state.textContent = "(the setting could not be saved; please try again)";
        })
        .finally(function () {
          button.disabled = false;
        });
    });
  }

  function setUpAnswerForm() {
    var form = document.querySelector("form.answer");
    if (!form) {
      return;
    }
    var root = form.closest("[data-shortcuts]");
    setUpShortcutSwitch(root);
    var button = form.querySelector("button[type=submit]");
    var sent = false;

    form.addEventListener("submit", function (event) {
      if (sent) {
        event.preventDefault(); // a double click: the first submission is on its way
        return;
      }
      sent = true;
      // Disabled after the form data is taken, so the submission itself is unaffected.
      window.setTimeout(function () {
        button.disabled = true;
        button.textContent = "Saving\u2026";
      }, 0);
    });
    // Coming back through the history cache: the page is live again (the server decides).
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        sent = false;
        button.disabled = false;
      }
    });

    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || event.isComposing) {
        return;
      }
      if (root.dataset.shortcuts !== "on" || document.querySelector("dialog[open]")) {
        return; // turned off by the reader (Enter still works on the button), or a dialog is open
      }
      var target = event.target;
      if (target.closest && target.closest("textarea, select, input[type=text], [contenteditable]")) {
        return;
      }
      if (event.key === "Enter") {
        if (target.closest && target.closest("a, button, summary")) {
          return; // Enter keeps its meaning on links and buttons
        }
        event.preventDefault();
        if (typeof form.requestSubmit === "function") {
          form.requestSubmit(button); // runs the browser's checks of the required choices
        } else {
          button.click();
        }
        return;
      }
      var key = event.key.length === 1 ? event.key.toLowerCase() : "";
      if (!key) {
        return;
      }
      var choice = form.querySelector('input[type=radio][data-shortcut="' + CSS.escape(key) + '"]');
      if (choice) {
        event.preventDefault();
        choice.checked = true;
        choice.focus({ preventScroll: true });
        choice.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
  }

  function start() {
    showLocalTimes();
    setUpAnswerForm();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
