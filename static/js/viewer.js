/* The study-image viewer: zoom at the pointer (wheel, pinch, double click), drag to pan, keys
   (+ - 0 and the arrows), brightness and contrast, the case image enlarged in a dialog, and a
   similar image compared with the case side by side at the same zoom; in the dialog, the
   previous and next image (buttons, or the left and right arrows while the image is not
   magnified) and full screen. Panning and zooming are done by Panzoom (static/vendor/);
   without script the images stay plain pictures and links. */
(function () {
  "use strict";

  var MAX_SCALE = 8;
  var STEP = 0.35; // zoom in/out multiplies the scale by e^0.35 (about 1.4)
  var PAN_SHARE = 0.1; // an arrow key moves the view by a tenth of the frame
  // One wheel notch multiplies the scale by 1.28 (Panzoom takes e^(step / 3) a notch): at
  // the buttons' step it was 1.12, and readers found the wheel slow.
  var WHEEL_STEP = 3 * Math.log(1.28);

  /* One zoomable image in its frame. Viewers in the same `group` follow each other's zoom. */
  function Viewer(frame, image, options) {
    var self = this;
    this.frame = frame;
    this.image = image;
    this.group = [this];
    this.output = null;
    this.touchWhenFit = options.touchWhenFit || "none";
    image.draggable = false;
    this.panzoom = window.Panzoom(image, {
      maxScale: MAX_SCALE,
      minScale: 1,
      step: STEP,
      contain: "outside",
      cursor: "grab",
      touchAction: this.touchWhenFit,
      handleStartEvent: function (event) {
        frame.focus({ preventScroll: true });
        event.preventDefault();
      },
    });
    frame.addEventListener("wheel", function (event) {
      self.panzoom.zoomWithWheel(event, { step: WHEEL_STEP });
    });
    frame.addEventListener("dblclick", function (event) {
      var scale = self.panzoom.getScale();
      var to = scale >= MAX_SCALE ? 1 : Math.min(MAX_SCALE, scale * 2);
      self.panzoom.zoomToPoint(to, event);
    });
    frame.addEventListener("keydown", function (event) {
      if (self.key(event)) {
        event.preventDefault();
        event.stopPropagation(); // not a survey shortcut as well
      }
    });
    image.addEventListener("panzoomchange", function (event) {
      self.changed(event.detail);
    });
  }

  Viewer.prototype.key = function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) {
      return false;
    }
    var step = (this.frame.clientWidth * PAN_SHARE) / this.panzoom.getScale();
    var moves = {
      ArrowLeft: [step, 0],
      ArrowRight: [-step, 0],
      ArrowUp: [0, step],
      ArrowDown: [0, -step],
    };
    if (event.key === "+" || event.key === "=") {
      this.panzoom.zoomIn({ animate: false });
    } else if (event.key === "-" || event.key === "_") {
      this.panzoom.zoomOut({ animate: false });
    } else if (event.key === "0") {
      this.reset();
    } else if (moves[event.key] && this.panzoom.getScale() > 1) {
      this.panzoom.pan(moves[event.key][0], moves[event.key][1], { relative: true, animate: false });
    } else {
      return false;
    }
    return true;
  };

  Viewer.prototype.changed = function (state) {
    var zoomed = state.scale > 1.001;
    this.frame.classList.toggle("zoomed", zoomed);
    // Fitted, a finger on the image still scrolls the page; zoomed, it pans the image.
    this.panzoom.setOptions({ touchAction: zoomed ? "none" : this.touchWhenFit });
    if (this.output) {
      this.output.textContent = Math.round(state.scale * 100) + "\u00a0%";
    }
    var self = this;
    this.group.forEach(function (other) {
      if (other !== self) {
        other.follow(state);
      }
    });
  };

  /* Take another viewer's zoom and position (frames of the same size show the same spot).
     The leader has already kept its image inside the frame; Panzoom's own containment would
     measure this image before its new scale is painted, so it is left out here. */
  Viewer.prototype.follow = function (state) {
    var quiet = { animate: false, silent: true, force: true, contain: undefined };
    this.panzoom.zoom(state.scale, quiet);
    this.panzoom.pan(state.x, state.y, quiet);
    this.frame.classList.toggle("zoomed", state.scale > 1.001);
  };

  Viewer.prototype.reset = function () {
    this.panzoom.reset({ animate: false });
  };

  Viewer.prototype.destroy = function () {
    this.panzoom.destroy();
  };

  /* Connect a toolbar (zoom buttons, level, sliders) to the viewers `viewers()` returns. */
  function bindTools(tools, viewers) {
    tools.hidden = false;
    var output = tools.querySelector(".zoom-level");
    var sliders = tools.querySelectorAll("input[data-filter]");

    function first() {
      return viewers()[0];
    }
    function applyFilters() {
      var filter = Array.prototype.map
        .call(sliders, function (slider) {
          return slider.dataset.filter + "(" + slider.value / 100 + ")";
        })
        .join(" ");
      viewers().forEach(function (viewer) {
        viewer.image.style.filter = filter;
      });
    }
    tools.querySelector("[data-zoom-in]").addEventListener("click", function () {
      first().panzoom.zoomIn({ animate: false });
    });
    tools.querySelector("[data-zoom-out]").addEventListener("click", function () {
      first().panzoom.zoomOut({ animate: false });
    });
    tools.querySelector("[data-reset]").addEventListener("click", function () {
      sliders.forEach(function (slider) {
        slider.value = 100;
      });
      applyFilters();
      first().reset();
    });
    sliders.forEach(function (slider) {
      slider.addEventListener("input", applyFilters);
    });
    return {
      output: output,
      sliders: sliders,
      applyFilters: applyFilters,
      // The slider values of another toolbar (the case image's, when it is enlarged).
      copyFrom: function (other) {
        sliders.forEach(function (slider, index) {
          slider.value = other.sliders[index].value;
        });
        applyFilters();
      },
      reset: function () {
        sliders.forEach(function (slider) {
          slider.value = 100;
        });
        output.textContent = "100\u00a0%";
      },
    };
  }

  /* The dialog: one pane (an enlarged image), or two (a similar image and the case). */
  function setUpDialog(queryImage, queryTools) {
    var dialog = document.getElementById("viewer-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      return; // the links still open the image in a new tab
    }
    var panes = dialog.querySelector(".panes");
    var title = dialog.querySelector("#viewer-dialog-title");
    var compare = dialog.querySelector("[data-compare]");
    var previous = dialog.querySelector("[data-previous]");
    var next = dialog.querySelector("[data-next]");
    var fullscreen = dialog.querySelector("[data-fullscreen]");
    var tiles = Array.prototype.filter.call(document.querySelectorAll(".tile"), function (tile) {
      return tile.querySelector("a[data-zoom]") !== null;
    });
    var viewers = [];
    var opener = null;
    var current = null; // the tile shown, or null for the case image
    var comparing = false; // a tile beside the case
    var tools = bindTools(dialog.querySelector(".viewer-tools"), function () {
      return viewers;
    });

    function pane(source, label, frameClass, caption) {
      var figure = document.createElement("figure");
      figure.className = "pane " + frameClass;
      var frame = document.createElement("div");
      frame.className = "viewer-frame";
      frame.tabIndex = 0;
      frame.setAttribute("role", "group");
      frame.setAttribute("aria-roledescription", "zoomable image");
      frame.setAttribute("aria-label", label);
      frame.setAttribute("aria-describedby", "viewer-keys");
      var image = document.createElement("img");
      image.src = source.href || source.src; // a tile's link holds the full-size image
      image.alt = source.alt;
      frame.appendChild(image);
      figure.appendChild(frame);
      var figcaption = document.createElement("figcaption");
      caption.childNodes.forEach(function (node) {
        figcaption.appendChild(node.cloneNode(true));
      });
      figure.appendChild(figcaption);
      panes.appendChild(figure);
      var viewer = new Viewer(frame, image, { touchWhenFit: "none" });
      viewer.output = tools.output;
      return viewer;
    }

    function clear() {
      viewers.forEach(function (viewer) {
        viewer.destroy();
      });
      viewers = [];
      panes.textContent = "";
    }

    function caseCaption() {
      return document.getElementById("query-caption");
    }

    /* What previous and next step through: the case then the similar images when enlarged,
       the similar images when each is compared with the case. */
    function sequence() {
      return comparing ? tiles : [null].concat(tiles);
    }

    function updateSteps() {
      var list = sequence();
      var index = list.indexOf(current);
      [previous, next].forEach(function (button) {
        if (button) {
          button.hidden = tiles.length === 0;
        }
      });
      if (previous) {
        previous.disabled = index <= 0;
      }
      if (next) {
        next.disabled = index < 0 || index >= list.length - 1;
      }
    }

    function step(by) {
      var list = sequence();
      var index = list.indexOf(current) + by;
      if (index < 0 || index >= list.length) {
        return false;
      }
      current = list[index];
      show(current, comparing);
      viewers[0].frame.focus({ preventScroll: true });
      return true;
    }

    function isFull() {
      return document.fullscreenElement === dialog || dialog.classList.contains("full");
    }

    function markFull() {
      if (fullscreen) {
        fullscreen.setAttribute("aria-pressed", isFull() ? "true" : "false");
      }
    }

    /* Full screen through the Fullscreen API where the browser allows it (not every phone
       browser does, nor an iframe without permission); otherwise the dialog covers the
       whole window, which is what a reader asking for it needs. */
    function enterFull() {
      dialog.classList.add("full");
      if (typeof dialog.requestFullscreen === "function" && document.fullscreenEnabled) {
        dialog.requestFullscreen().then(markFull, markFull);
      }
      markFull();
    }

    function leaveFull() {
      dialog.classList.remove("full");
      if (document.fullscreenElement === dialog && typeof document.exitFullscreen === "function") {
        document.exitFullscreen().then(markFull, markFull);
      }
      markFull();
    }

    function show(tile, beside) {
      clear();
      tools.reset();
      comparing = Boolean(tile) && beside;
      if (tile) {
        var name = tile.querySelector("figcaption").textContent.replace(/\s+/g, " ").trim();
        var frameClass = "tile-pane " + tile.className.replace("tile", "").trim();
        var full = { href: tile.querySelector("a").href, alt: tile.querySelector("img").alt };
        viewers.push(pane(full, "Similar image " + name, frameClass, tile.querySelector("figcaption")));
        title.textContent = comparing ? "Similar image " + name + " beside the case" : "Similar image " + name;
      } else {
        title.textContent = caseCaption().textContent;
      }
      if (!tile || comparing) {
        viewers.push(pane(queryImage, queryImage.alt, "query-pane", caseCaption()));
      }
      panes.classList.toggle("two", viewers.length === 2);
      viewers.forEach(function (viewer) {
        viewer.group = viewers;
      });
      if (compare) {
        compare.hidden = !tile;
        compare.setAttribute("aria-pressed", comparing ? "true" : "false");
      }
      updateSteps();
      if (!tile && queryTools) {
        tools.copyFrom(queryTools);
      }
      tools.applyFilters();
    }

    document.querySelectorAll(".tile a[data-zoom]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey) {
          return; // the reader asked for a new tab
        }
        event.preventDefault();
        opener = link;
        current = link.closest(".tile");
        dialog.showModal();
        show(current, false);
        viewers[0].frame.focus();
      });
    });
    var enlarge = document.querySelector("[data-enlarge]");
    if (enlarge) {
      enlarge.addEventListener("click", function () {
        opener = enlarge;
        current = null;
        dialog.showModal();
        show(null, false);
        viewers[0].frame.focus();
      });
    }
    if (compare) {
      compare.addEventListener("click", function () {
        show(current, compare.getAttribute("aria-pressed") !== "true");
      });
    }
    if (previous) {
      previous.addEventListener("click", function () {
        step(-1);
      });
    }
    if (next) {
      next.addEventListener("click", function () {
        step(1);
      });
    }
    if (fullscreen) {
      fullscreen.addEventListener("click", function () {
        if (isFull()) {
          leaveFull();
        } else {
          enterFull();
        }
      });
      document.addEventListener("fullscreenchange", function () {
        if (document.fullscreenElement !== dialog) {
          dialog.classList.remove("full"); // left by the browser's own Esc
        }
        markFull();
      });
    }
    // The left and right arrows step through the images while the image is not magnified
    // (magnified, the viewer takes them to move it and they never get here).
    dialog.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || event.target.matches("input")) {
        return;
      }
      var by = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
      if (by && tiles.length && step(by)) {
        event.preventDefault();
      }
    });
    dialog.querySelector("[data-close]").addEventListener("click", function () {
      dialog.close();
    });
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) {
        dialog.close(); // a click on the backdrop
      }
    });
    dialog.addEventListener("close", function () {
      leaveFull();
      clear();
      if (opener) {
        opener.focus();
      }
    });
  }

  /* The saliency toggle: the case image swapped for the same image with the AI's saliency map
     laid over it (the bundle's overlay), at the same zoom, pan and filters. */
  function setUpSaliency(queryImage, toolbar) {
    var button = toolbar.querySelector("[data-saliency]");
    var overlay = queryImage.getAttribute("data-saliency-src");
    if (!button || !overlay) {
      return;
    }
    var plain = { src: queryImage.getAttribute("src"), alt: queryImage.alt };
    var link = document.querySelector("[data-saliency-link]");
    if (link) {
      link.parentElement.hidden = true; // the button does what the link did
    }
    var views = document.querySelector("input[name=saliency_views]");
    if (views) {
      views.value = views.value || "0"; // counted: 0 means never shown
    }
    button.addEventListener("click", function () {
      var on = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", on ? "true" : "false");
      if (on && views) {
        views.value = String(Number(views.value || 0) + 1); // recorded with the answer
      }
      queryImage.src = on ? overlay : plain.src;
      queryImage.alt = on ? plain.alt + ", with the AI's saliency map laid over it" : plain.alt;
    });
  }

  function start() {
    if (typeof window.Panzoom !== "function") {
      return;
    }
    var queryImage = document.querySelector("img[data-query-image]");
    var queryTools = null;
    if (queryImage) {
      var viewer = new Viewer(queryImage.parentElement, queryImage, { touchWhenFit: "pan-y" });
      var toolbar = document.querySelector(".query .viewer-tools");
      queryTools = bindTools(toolbar, function () {
        return [viewer];
      });
      viewer.output = queryTools.output;
      setUpSaliency(queryImage, toolbar);
    }
    setUpDialog(queryImage, queryTools);
  }

  /* The similar images load once the case image has arrived (or failed): on a slow line they
     would otherwise share its bandwidth, and the case is what the reader needs first. */
  function loadNeighbours() {
    var waiting = document.querySelectorAll("img[data-src]");
    var queryImage = document.querySelector("img[data-query-image]");
    function release() {
      waiting.forEach(function (img) {
        img.srcset = img.getAttribute("data-srcset") || "";
        img.src = img.getAttribute("data-src");
        img.removeAttribute("data-src");
      });
    }
    if (!queryImage || queryImage.complete) {
      release();
    } else {
      queryImage.addEventListener("load", release, { once: true });
      queryImage.addEventListener("error", release, { once: true });
    }
  }

  function begin() {
    loadNeighbours();
    start();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", begin);
  } else {
    begin();
  }
})();
