/* partnermesh portal: a dashboard's grid. Progressive enhancement only: without this file
   the widgets' data is a link away, the time range is a form and every layout button posts.
   Loaded under a strict Content-Security-Policy (no inline scripts or styles: sizes are classes). */
(function () {
  "use strict";

  var MAX_W = 4, MAX_H = 3;

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function say(text) {
    var status = document.getElementById("layout-status");
    if (status) status.textContent = text;
  }

  /* ---------------------------------------------------------------- data */
  function load(grid) {
    grid.setAttribute("aria-busy", "true");
    return fetch(grid.getAttribute("data-src"), { credentials: "same-origin" }).then(function (resp) {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return resp.text();
    }).then(function (html) {
      var box = document.createElement("template");
      box.innerHTML = html;  // server-rendered and escaped
      box.content.querySelectorAll("[data-widget]").forEach(function (data) {
        var frame = document.getElementById("widget-" + data.getAttribute("data-widget"));
        if (!frame) return;
        var title = data.querySelector(".data-title");
        if (title) title.remove();
        var body = frame.querySelector(".widget-body");
        body.replaceChildren.apply(body, Array.prototype.slice.call(data.childNodes));
        frame.classList.remove("loading");
      });
      var said = box.content.querySelector("[data-range-said]");
      var now = document.getElementById("range-now");
      if (said && now) now.textContent = said.textContent;
      grid.setAttribute("aria-busy", "false");
      grid.classList.add("loaded");
    }, function (err) {
      grid.setAttribute("aria-busy", "false");
      grid.querySelectorAll(".widget-body").forEach(function (body) {
        var p = document.createElement("p");
        p.className = "error";
        p.setAttribute("role", "alert");
        p.textContent = "The widget could not be loaded (" + err.message + "). Reload to try again.";
        body.replaceChildren(p);
      });
    });
  }

  /* ---------------------------------------------------------------- time range */
  function initRange(grid) {
    var form = document.getElementById("range");
    if (!form) return;
    var select = form.querySelector("select[name=range]");
    function custom() { form.classList.toggle("custom", select.value === "custom"); }
    function apply() {
      var params = new URLSearchParams(new FormData(form));
      if (select.value !== "custom") { params.delete("from"); params.delete("to"); }
      var query = params.toString();
      history.replaceState(null, "", location.pathname + "?" + query);
      grid.setAttribute("data-src", grid.getAttribute("data-base") + "?" + query);
      grid.classList.remove("loaded");
      load(grid);
    }
    custom();
    select.addEventListener("change", function () {
      custom();
      if (select.value !== "custom") apply();
    });
    form.addEventListener("submit", function (e) { e.preventDefault(); apply(); });
  }

  /* ---------------------------------------------------------------- layout */
  function columns(grid) {
    return getComputedStyle(grid).gridTemplateColumns.split(" ").filter(Boolean).length || 1;
  }

  function size(widget, w, h) {
    w = Math.max(1, Math.min(MAX_W, w));
    h = Math.max(1, Math.min(MAX_H, h));
    widget.classList.remove("w1", "w2", "w3", "w4", "h1", "h2", "h3");
    widget.classList.add("w" + w, "h" + h);
    widget.setAttribute("data-w", String(w));
    widget.setAttribute("data-h", String(h));
  }

  function save(grid, what) {
    var widgets = Array.prototype.map.call(grid.querySelectorAll(".widget"), function (w) {
      return { id: w.getAttribute("data-id"), w: +w.getAttribute("data-w"), h: +w.getAttribute("data-h") };
    });
    return fetch(grid.getAttribute("data-layout"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify({ widgets: widgets })
    }).then(function (resp) {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      say(what + " Layout saved.");
    }).catch(function (err) { say(what + " The layout could not be saved (" + err.message + ")."); });
  }

  var SAID = { left: "Moved left", right: "Moved right", up: "Moved up", down: "Moved down",
    wider: "Wider", narrower: "Narrower", taller: "Taller", shorter: "Shorter" };

  function step(grid, widget, how) {
    var all = Array.prototype.slice.call(grid.querySelectorAll(".widget"));
    var at = all.indexOf(widget);
    var w = +widget.getAttribute("data-w"), h = +widget.getAttribute("data-h");
    var jump = { left: -1, right: 1, up: -columns(grid), down: columns(grid) }[how];
    if (jump !== undefined) {
      var to = Math.max(0, Math.min(all.length - 1, at + jump));
      if (to === at) return false;
      var ref = to > at ? all[to].nextSibling : all[to];
      grid.insertBefore(widget, ref);
    } else if (how === "wider" || how === "narrower") {
      size(widget, w + (how === "wider" ? 1 : -1), h);
    } else {
      size(widget, w, h + (how === "taller" ? 1 : -1));
    }
    return true;
  }

  function initKeys(grid) {
    grid.addEventListener("click", function (e) {
      var button = e.target.closest("button[data-move]");
      if (!button) return;
      e.preventDefault();
      var widget = button.closest(".widget");
      var how = button.getAttribute("data-move");
      var title = widget.querySelector("h2").textContent;
      if (step(grid, widget, how)) {
        button.focus();  // moving an element in the DOM may drop its focus
        save(grid, SAID[how] + ": " + title + ".");
      } else {
        say(title + " cannot move further " + how + ".");
      }
    });
  }

  /* Dragging a widget by its title bar, with a mouse, a pen or a finger (pointer events:
     HTML drag and drop does not work on touch screens). */
  function initDrag(grid) {
    grid.addEventListener("pointerdown", function (e) {
      var head = e.target.closest(".widget-head");
      if (!head || e.button !== 0 || e.target.closest("a, button")) return;
      var widget = head.closest(".widget");
      var x0 = e.clientX, y0 = e.clientY, moving = false, target = null, after = false;
      head.setPointerCapture(e.pointerId);
      function clear() {
        grid.querySelectorAll(".drop-target").forEach(function (t) { t.classList.remove("drop-target"); });
      }
      function move(ev) {
        if (!moving && Math.abs(ev.clientX - x0) + Math.abs(ev.clientY - y0) < 6) return;
        moving = true;
        widget.classList.add("dragging");
        var under = document.elementFromPoint(ev.clientX, ev.clientY);
        var over = under && under.closest(".widget");
        clear();
        target = over && over !== widget && grid.contains(over) ? over : null;
        if (!target) return;
        var box = target.getBoundingClientRect();
        after = ev.clientX > box.left + box.width / 2;
        target.classList.add("drop-target");
      }
      function up() {
        head.removeEventListener("pointermove", move);
        head.removeEventListener("pointerup", up);
        head.removeEventListener("pointercancel", up);
        widget.classList.remove("dragging");
        clear();
        if (!moving || !target) return;
        grid.insertBefore(widget, after ? target.nextSibling : target);
        save(grid, "Moved: " + widget.querySelector("h2").textContent + ".");
      }
      head.addEventListener("pointermove", move);
      head.addEventListener("pointerup", up);
      head.addEventListener("pointercancel", up);
    });
  }

  function initResize(grid) {
    grid.addEventListener("pointerdown", function (e) {
      var handle = e.target.closest(".resize-handle");
      if (!handle) return;
      e.preventDefault();
      var widget = handle.closest(".widget");
      var cols = columns(grid);
      var gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
      var colWidth = (grid.clientWidth - gap * (cols - 1)) / cols;
      var rowHeight = (parseFloat(getComputedStyle(grid).gridAutoRows) || 224) + gap;
      var start = widget.getBoundingClientRect();
      handle.setPointerCapture(e.pointerId);
      function moveTo(ev) {
        var w = Math.round((ev.clientX - start.left + gap) / (colWidth + gap));
        var h = Math.round((ev.clientY - start.top + gap) / rowHeight);
        size(widget, Math.min(w, cols), h);
      }
      function done(ev) {
        moveTo(ev);
        handle.removeEventListener("pointermove", moveTo);
        handle.removeEventListener("pointerup", done);
        save(grid, "Resized: " + widget.querySelector("h2").textContent + ".");
      }
      handle.addEventListener("pointermove", moveTo);
      handle.addEventListener("pointerup", done);
    });
  }

  function init() {
    var grid = document.querySelector(".widgets[data-src]");
    if (!grid) return;
    load(grid);
    initRange(grid);
    if (grid.hasAttribute("data-layout")) {
      initKeys(grid);
      initDrag(grid);
      initResize(grid);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
