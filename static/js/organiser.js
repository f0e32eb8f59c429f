/* Organiser safeguards: warn before leaving a settings form with unsaved edits, and before
   opening the study while its settings form has unsaved edits (the open button would discard
   them). Without script the server still asks before closing a study or moving Task 2. */
(function () {
  "use strict";

  // Copy buttons next to invitation links (the CSP allows no inline script).
  function setUpCopyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.getElementById(button.getAttribute("data-copy"));
        if (!field) {
          return;
        }
        function done() {
          button.textContent = "Copied";
        }
        field.select();
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () {
            document.execCommand("copy");
            done();
          });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    });
  }

  // The design form: each condition row shows only the options of its aid (none for "No
  // aid"); the server ignores the options that do not apply, so hidden ones change nothing.
  function setUpConditionRows() {
    document.querySelectorAll("fieldset.condition-row").forEach(function (row) {
      var aid = row.querySelector("select[name$='-aid']");
      if (!aid) {
        return;
      }
      function show() {
        row.querySelectorAll("[data-applies]").forEach(function (option) {
          var applies = option.getAttribute("data-applies").split(" ");
          option.hidden = applies.indexOf(aid.value) < 0;
        });
      }
      aid.addEventListener("change", show);
      show();
    });
  }

  function start() {
    setUpCopyButtons();
    setUpConditionRows();
    var form = document.querySelector("form[data-unsaved-warning]");
    if (!form) {
      return;
    }
    var dirty = false;
    var leaving = false;
    form.addEventListener("input", function () {
      dirty = true;
    });
    form.addEventListener("change", function () {
      dirty = true;
    });
    form.addEventListener("submit", function () {
      leaving = true; // saving is not losing
    });
    window.addEventListener("beforeunload", function (event) {
      if (dirty && !leaving) {
        event.preventDefault();
        event.returnValue = ""; // the browser shows its own "leave the page?" question
      }
    });
    document.querySelectorAll("form[data-needs-saved]").forEach(function (other) {
      other.addEventListener("submit", function (event) {
        if (!dirty) {
          return;
        }
        var proceed = window.confirm(
          "Your changes to the settings are not saved. Open the study without them?\n" +
            "(Cancel, then press \u201cSave settings\u201d first to keep them.)"
        );
        if (proceed) {
          leaving = true;
        } else {
          event.preventDefault();
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
