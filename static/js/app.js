/* Every page: a table wider than its column scrolls sideways in its own box (the page never
   does), and that box is a labelled region the keyboard can reach (WCAG 2.1.1, axe's
   scrollable-region-focusable). Without script the tables are still whole, with headers. */
(function () {
  "use strict";

  function label(box) {
    var caption = box.querySelector("caption");
    var section = box.closest("section, .card");
    var heading = section ? section.querySelector("h2, h3") : null;
    var text = (caption || heading || { textContent: "Table" }).textContent;
    return text.replace(/\s+/g, " ").trim() + " (scrolls sideways)";
  }

  function wrapTables() {
    document.querySelectorAll("main table").forEach(function (table) {
      if (table.closest(".scroll")) {
        return;
      }
      var box = document.createElement("div");
      box.className = "scroll";
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    });
  }

  // Only a box that does scroll is a tab stop; the check runs again when the window changes.
  // Regions are landmarks: each gets a name of its own.
  function updateBoxes() {
    var names = {};
    document.querySelectorAll(".scroll").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        var name = label(box);
        names[name] = (names[name] || 0) + 1;
        box.tabIndex = 0;
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", names[name] > 1 ? name + " " + names[name] : name);
      } else if (!scrolls && box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  }

  function start() {
    wrapTables();
    updateBoxes();
    var pending = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(updateBoxes, 150);
    });
    // A <details> that opens shows tables that had no width while it was closed.
    document.addEventListener("toggle", updateBoxes, true);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
