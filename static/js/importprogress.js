/* The import progress page: asks the server for the page again every two seconds and updates
   the stage and the bar in place (the status is a polite live region, so a screen reader
   hears the new stage without losing its place); once the import has finished, the page
   reloads, and the server shows the new study or why the bundle was refused. Without script
   the page offers a link to check again (a self-refreshing page would fail WCAG 2.2.1). */
(function () {
  "use strict";

  var PERIOD = 2000;
  var status = document.querySelector("[data-import-status]");
  if (!status || typeof window.fetch !== "function") {
    return;
  }
  var bar = document.querySelector("[data-import-bar]");

  function poll() {
    window
      .fetch(window.location.href, {
        redirect: "manual",
        credentials: "same-origin",
        headers: { "X-Import-Poll": "1" } // finished: the server answers 204, shows nothing yet
      })
      .then(function (response) {
        // Finished: a redirect to the study, or the refusal (an error status). Reloading lets
        // the server show it (and its message) as a normal page.
        if (response.type === "opaqueredirect" || !response.ok || response.status === 204) {
          window.location.reload();
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var freshStatus = fresh.querySelector("[data-import-status]");
        var freshBar = fresh.querySelector("[data-import-bar]");
        if (!freshStatus || !bar !== !freshBar) {
          window.location.reload(); // another page, or the bar appeared: show it whole
          return;
        }
        if (freshStatus.textContent !== status.textContent) {
          status.textContent = freshStatus.textContent;
        }
        if (bar) {
          bar.max = freshBar.max;
          bar.value = freshBar.value;
          bar.textContent = freshBar.textContent;
        }
        window.setTimeout(poll, PERIOD);
      })
      .catch(function () {
        window.setTimeout(poll, 2 * PERIOD); // the server is restarting, say: try again
      });
  }

  window.setTimeout(poll, PERIOD);
})();
