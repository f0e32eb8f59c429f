/* The survey's little JavaScript: keyboard shortcuts, one submission per click, an image
   zoom dialog and local times. Everything also works without it; the server is the guard. */
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

  function setUpZoom() {
    var dialog = document.getElementById("zoom-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      return null; // the links still open the image in a new tab
    }
    var body = dialog.querySelector(".zoom-body");
    var image = document.createElement("img");
    body.appendChild(image);
    var opener = null;

    document.querySelectorAll("a[data-zoom]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey) {
          return; // the reader asked for a new tab
        }
        event.preventDefault();
        var thumbnail = link.querySelector("img");
        image.src = link.getAttribute("href");
        image.alt = thumbnail ? thumbnail.alt : "";
        body.classList.remove("magnified");
        opener = link;
        dialog.showModal();
      });
    });
    image.addEventListener("click", function () {
      body.classList.toggle("magnified");
    });
    dialog.querySelector("[data-close]").addEventListener("click", function () {
      dialog.close();
    });
    // A click on the backdrop (outside the dialog's box) closes it.
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) {
        dialog.close();
      }
    });
    dialog.addEventListener("close", function () {
      if (opener) {
        opener.focus();
      }
    });
    return dialog;
  }

  function setUpAnswerForm(dialog) {
    var form = document.querySelector("form.answer");
    if (!form) {
      return;
    }
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
      if (dialog && dialog.open) {
        return;
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
    setUpAnswerForm(setUpZoom());
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
