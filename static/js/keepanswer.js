/* An answer is never silently lost: the reader's choice on a case page is kept in this tab's
   sessionStorage (never sent anywhere), per case token. When the session ended mid-case, the
   server refuses the answer and sends the reader to log in; back on the same case, the choice
   is selected again and the page says that nothing was saved yet. Entries of other cases are
   dropped when a case page opens (their answer was saved, or the case is not current). */
(function () {
  "use strict";

  var PREFIX = "secbir-choice:";

  function storage() {
    try {
      return window.sessionStorage;
    } catch (error) {
      return null; // storage blocked: the page works as before, without the safety net
    }
  }

  function forgetOthers(store, keep) {
    var stale = [];
    for (var index = 0; index < store.length; index += 1) {
      var name = store.key(index);
      if (name && name.indexOf(PREFIX) === 0 && name !== keep) {
        stale.push(name);
      }
    }
    stale.forEach(function (name) {
      store.removeItem(name);
    });
  }

  function choose(form, name, value) {
    var input = form.querySelector(
      'input[type=radio][name="' + name + '"][value="' + CSS.escape(String(value)) + '"]'
    );
    if (input && !input.checked) {
      input.checked = true;
      input.dispatchEvent(new Event("change", { bubbles: true }));
      return true;
    }
    return Boolean(input && input.checked);
  }

  function announce(form) {
    var note = document.createElement("p");
    note.className = "notice restored-choice";
    note.setAttribute("role", "status");
    note.textContent =
      "Your choice from before is selected again. Nothing was saved yet: check it and press Save.";
    var anchor = form.querySelector("fieldset");
    if (anchor) {
      anchor.parentNode.insertBefore(note, anchor);
    } else {
      form.insertBefore(note, form.firstChild);
    }
  }

  function start() {
    var form = document.querySelector("form.answer");
    var store = storage();
    if (!form || !form.elements.token || !store) {
      return;
    }
    var key = PREFIX + form.elements.token.value;
    forgetOthers(store, key);
    var saved = null;
    try {
      saved = JSON.parse(store.getItem(key) || "null");
    } catch (error) {
      saved = null;
    }
    var anyChecked = form.querySelector("input[type=radio]:checked");
    if (saved && !anyChecked) {
      var restored = false;
      if (saved.diagnosis) {
        restored = choose(form, "diagnosis", saved.diagnosis) || restored;
      }
      if (saved.confidence) {
        restored = choose(form, "confidence", saved.confidence) || restored;
      }
      if (restored) {
        announce(form);
      }
    }
    form.addEventListener("change", function () {
      var diagnosis = form.querySelector("input[name=diagnosis]:checked");
      var confidence = form.querySelector("input[name=confidence]:checked");
      store.setItem(
        key,
        JSON.stringify({
          diagnosis: diagnosis ? diagnosis.value : null,
          confidence: confidence ? confidence.value : null,
        })
      );
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
