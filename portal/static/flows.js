/* partnermesh portal, flows: the status page follows its flow live (Server-Sent Events),
   the builder refreshes itself when a choice changes what it shows. Progressive
   enhancement only: without this file the page has a refresh link and every builder
   button is a plain form post. Loaded under the portal's strict Content-Security-Policy. */
(function () {
  "use strict";

  function follow(box) {
    if (!window.EventSource) return;
    var steps = document.getElementById("flow-steps-box");
    var status = document.getElementById("flow-status");
    var error = document.getElementById("flow-error");
    var live = document.getElementById("flow-live");
    var source = new EventSource(box.getAttribute("data-flow-events"));
    source.addEventListener("open", function () { box.setAttribute("data-live", "open"); });
    source.addEventListener("flow", function (e) {
      var d = JSON.parse(e.data);
      steps.innerHTML = d.html;  // rendered and escaped by the portal, like the page itself
      status.textContent = d.status;
      status.className = "status status-" + d.status;
      if (d.error) { error.textContent = d.error; error.hidden = false; }
      box.setAttribute("data-updated", String(Date.now()));
    });
    source.addEventListener("end", function () {
      source.close();
      box.setAttribute("data-live", "ended");
      if (live && live.parentNode) live.parentNode.removeChild(live);  // nothing left to refresh
    });
    source.addEventListener("gone", function () { source.close(); box.setAttribute("data-live", "gone"); });
  }

  function builder(form) {
    // A value box only where the input is fed a value.
    function sync(select) {
      var input = document.getElementById(select.getAttribute("data-source"));
      if (input) input.hidden = select.value !== "const";
    }
    form.querySelectorAll("select[data-source]").forEach(function (select) {
      sync(select);
      select.addEventListener("change", function () { sync(select); });
    });
    // A new compensation has inputs of its own: fetch the builder again with them.
    form.querySelectorAll("select[data-refresh]").forEach(function (select) {
      select.addEventListener("change", function () {
        var button = form.querySelector("button.default-action");
        if (form.requestSubmit && button) form.requestSubmit(button);
      });
    });
  }

  function init() {
    document.documentElement.classList.add("js");
    var box = document.querySelector("[data-flow-events]");
    if (box) follow(box);
    var form = document.getElementById("builder");
    if (form) builder(form);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
