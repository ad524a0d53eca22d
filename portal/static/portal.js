/* partnermesh portal: progressive enhancement only (every page works without it).
   No inline scripts anywhere: this file is loaded under a strict Content-Security-Policy. */
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* ---------------------------------------------------------------- navigation (phones) */
  function initMenu() {
    var button = document.querySelector(".menu-toggle");
    var nav = document.getElementById("nav");
    if (!button || !nav) return;
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", open ? "false" : "true");
      nav.classList.toggle("open", !open);
    });
  }

  /* ---------------------------------------------------------------- hover cards */
  var cards = new Map();      // person id -> Promise of card JSON (cached for the page's life)
  var card = null;            // the one card element, reused
  var owner = null;           // the link the card belongs to
  var showTimer = 0;
  var hideTimer = 0;
  var refocusing = false;     // focus returning to a name after Escape must not reopen its card

  function fetchCard(id, ally) {
    var url = "/api/cards/" + encodeURIComponent(id) + (ally ? "?ally=" + encodeURIComponent(ally) : "");
    id = (ally ? ally + "/" : "") + id;
    if (!cards.has(id)) {
      cards.set(id, fetch(url, {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      }).then(function (resp) {
        return resp.json().then(function (body) {
          if (!resp.ok) { cards.delete(id); throw new Error(body.error || "unavailable"); }
          return body;
        });
      }));
    }
    return cards.get(id);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function ensureCard() {
    if (card) return card;
    card = el("div", "hovercard");
    card.id = "hovercard";
    card.setAttribute("role", "tooltip");
    card.hidden = true;
    card.addEventListener("mouseenter", function () { clearTimeout(hideTimer); });
    card.addEventListener("mouseleave", scheduleHide);
    document.body.appendChild(card);
    return card;
  }

  function fill(data) {
    var c = ensureCard();
    c.textContent = "";
    var close = el("button", "hovercard-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Close card");
    close.addEventListener("click", hide);
    c.appendChild(close);
    var top = el("div", "with-avatar");
    var face;
    if (data.avatar) {
      face = el("img", "avatar picture");
      face.src = "/pictures/person/" + encodeURIComponent(data.person) + "/" + encodeURIComponent(data.avatar);
      face.alt = "";
      face.width = face.height = 32;
    } else {
      face = el("span", "avatar tone" + (data.tone || 0), data.initials || "?");
      face.setAttribute("aria-hidden", "true");
    }
    top.appendChild(face);
    var head = el("p", "hovercard-name", data.name || data.person);
    if (data.verified) head.appendChild(el("span", "badge", "✓ Verified"));
    if (data.ally) {
      var brand = el("span", "brand-badge", data.ecosystem_name || data.ecosystem || data.ally);
      brand.title = "From the allied ecosystem " + (data.ecosystem || data.ally);
      head.appendChild(brand);
    }
    top.appendChild(head);
    c.appendChild(top);
    if (data.headline) c.appendChild(el("p", "hovercard-headline", data.headline));
    if (data.company) c.appendChild(el("p", "muted", data.company));
    if (data.terms && data.terms.length) {
      var ul = el("ul", "cloud");
      ul.setAttribute("aria-label", "Tag cloud");
      data.terms.forEach(function (t) {
        var li = el("li", "w" + t.size);
        var a = el("a", "", t.term);
        a.href = "/directory?q=" + encodeURIComponent(t.term);
        a.title = "Find others about " + t.term;
        li.appendChild(a);
        ul.appendChild(li);
      });
      c.appendChild(ul);
      c.appendChild(el("p", "muted small", "From the profile and " + data.posts + " posts you can see"));
    } else {
      c.appendChild(el("p", "empty", "No tag cloud yet."));
    }
    var actions = el("p", "row hovercard-actions");
    function action(href, label) {
      var a = el("a", "button small", label);
      a.href = href;
      actions.appendChild(a);
    }
    var who = encodeURIComponent(data.person || "");
    action(data.href || "/people/" + who, "Profile");
    if (data.ally) {
      if (data.broker) action((data.href || "") + "#introduce", "Introduce");
    } else if (!data.me) {
      actions.appendChild(messageForm(data.person || ""));
      action("/workspaces?with=" + who, "Workspace");
      if (data.broker) action("/broker?a=" + who + "#propose", "Introduce");
    }
    c.appendChild(actions);
  }

  // The content a name was opened from (its post, directory entry, row): the card never covers it.
  function contentOf(link) {
    return link.closest(".post, .entry, .intro, .widget, tr") || link.closest("li, p") || link;
  }

  function clamp(value, low, high) { return Math.max(low, Math.min(value, high)); }

  // Where the card goes, in viewport coordinates: above the content when the screen has room
  // there, else beside it, else below it (the page grows downwards, so there is always room).
  function spot(link, width, height) {
    var gap = 6, margin = 8, vw = document.documentElement.clientWidth, vh = window.innerHeight;
    var r = link.getBoundingClientRect();
    var a = contentOf(link).getBoundingClientRect();
    var nearName = clamp(r.left, margin, vw - width - margin);
    if (a.top - height - gap >= margin) return { left: nearName, top: a.top - height - gap };
    var beside = clamp(r.top, margin, Math.max(margin, vh - height - margin));
    if (a.right + gap + width <= vw - margin) return { left: a.right + gap, top: beside };
    if (a.left - gap - width >= margin) return { left: a.left - gap - width, top: beside };
    return { left: nearName, top: a.bottom + gap };
  }

  // "Message" opens (or reopens) the direct conversation: a POST, with the page's CSRF token.
  function messageForm(person) {
    var form = el("form");
    form.method = "post";
    form.action = "/conversations";
    [["csrf", csrf()], ["person", person]].forEach(function (pair) {
      var input = el("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    var button = el("button", "small", "Message");
    button.type = "submit";
    form.appendChild(button);
    return form;
  }

  function place(link) {
    var c = ensureCard();
    var width = Math.min(320, document.documentElement.clientWidth - 16);
    // CSSOM writes are allowed by the CSP (only inline style attributes are not).
    c.style.width = width + "px";
    var at = spot(link, width, c.offsetHeight || 0);
    c.style.left = Math.round(at.left + window.scrollX) + "px";
    c.style.top = Math.round(at.top + window.scrollY) + "px";
  }

  function show(link) {
    var id = link.getAttribute("data-card");
    owner = link;
    var c = ensureCard();
    c.textContent = "";
    c.appendChild(el("p", "muted", "Loading…"));
    c.hidden = false;
    link.setAttribute("aria-describedby", "hovercard");
    place(link);
    fetchCard(id, link.getAttribute("data-card-ally")).then(function (data) {
      if (owner === link) { fill(data); place(link); }
    }, function (err) {
      if (owner === link) { c.textContent = ""; c.appendChild(el("p", "error", "Card unavailable: " + err.message)); }
    });
  }

  function hide() {
    clearTimeout(showTimer);
    if (card) card.hidden = true;
    if (owner) owner.removeAttribute("aria-describedby");
    owner = null;
  }

  function scheduleHide() {
    clearTimeout(showTimer);
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hide, 250);
  }

  function cardLink(target) {
    return target && target.closest ? target.closest("a[data-card]") : null;
  }

  function initCards() {
    var touched = null;
    document.addEventListener("mouseover", function (e) {
      var link = cardLink(e.target);
      if (!link || link === owner) return;
      clearTimeout(hideTimer);
      clearTimeout(showTimer);
      showTimer = setTimeout(function () { show(link); }, 250);
    });
    document.addEventListener("mouseout", function (e) {
      var link = cardLink(e.target);
      if (link && !link.contains(e.relatedTarget)) scheduleHide();
    });
    document.addEventListener("focusin", function (e) {
      if (refocusing) return;
      var link = cardLink(e.target);
      if (link) { clearTimeout(hideTimer); show(link); }
      else if (!(card && card.contains(e.target))) hide();
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && card && !card.hidden) {
        var back = owner, inside = card.contains(document.activeElement);
        hide();
        // Focus goes back to the name only from inside the card, without opening it again.
        if (back && inside) { refocusing = true; back.focus(); refocusing = false; }
      }
    });
    // Touch: the first tap on a name shows its card, a second tap follows the link;
    // a tap anywhere else dismisses the card.
    document.addEventListener("touchstart", function (e) {
      var link = cardLink(e.target);
      if (!link && card && !card.hidden && !card.contains(e.target)) hide();
    }, { passive: true });
    document.addEventListener("click", function (e) {
      var link = cardLink(e.target);
      if (!link) return;
      if (e.pointerType === "touch" || (window.matchMedia && window.matchMedia("(hover: none)").matches)) {
        if (touched !== link) { e.preventDefault(); touched = link; show(link); }
      }
    });
  }

  /* ---------------------------------------------------------------- Markdown preview */
  function initPreview() {
    document.querySelectorAll("[data-preview-for]").forEach(function (button) {
      button.addEventListener("click", function () {
        var area = document.getElementById(button.getAttribute("data-preview-for"));
        var out = document.getElementById(area.getAttribute("data-preview"));
        out.hidden = false;
        out.textContent = "Rendering…";
        fetch("/api/preview", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify({ text: area.value })
        }).then(function (resp) { return resp.json(); }).then(function (body) {
          // The HTML was sanitised on the server (no scripts, handlers or styles).
          if (body.html !== undefined) out.innerHTML = body.html || "<p class=\"empty\">Nothing to preview.</p>";
          else out.textContent = body.error || "Preview unavailable.";
        }, function () { out.textContent = "Preview unavailable."; });
      });
    });
  }

  document.documentElement.classList.add("js");
  // @mention autocomplete: typing "@no" in an editor lists matching people; arrows choose,
  // Enter or Tab inserts "@handle ", Escape closes (ARIA combobox with a listbox).
  function mentionQuery(area) {
    var before = area.value.slice(0, area.selectionStart);
    var m = /(^|[^\w@])@([\w.\-]{1,64})$/.exec(before);
    return m ? { text: m[2], start: before.length - m[2].length - 1 } : null;
  }

  function initMentions() {
    document.querySelectorAll("textarea[data-mentions]").forEach(function (area) {
      var list = document.getElementById(area.getAttribute("data-mentions"));
      if (!list) return;
      var items = [], active = -1, query = null, seq = 0;

      function close() {
        list.hidden = true; list.textContent = ""; items = []; active = -1;
        area.setAttribute("aria-expanded", "false"); area.removeAttribute("aria-activedescendant");
      }
      function mark(i) {
        active = i;
        Array.prototype.forEach.call(list.children, function (li, n) {
          li.setAttribute("aria-selected", n === i ? "true" : "false");
        });
        if (i >= 0) area.setAttribute("aria-activedescendant", list.children[i].id);
      }
      function pick(i) {
        var person = items[i];
        if (!person || !query) return;
        var end = query.start + 1 + query.text.length;
        var insert = "@" + person.handle + " ";
        area.value = area.value.slice(0, query.start) + insert + area.value.slice(end);
        var caret = query.start + insert.length;
        area.setSelectionRange(caret, caret);
        close(); area.focus();
      }
      function render(found) {
        list.textContent = ""; items = found;
        if (!found.length) { close(); return; }
        found.forEach(function (p, n) {
          var li = el("li", "", "");
          li.id = list.id + "-" + n;
          li.setAttribute("role", "option");
          li.appendChild(el("strong", "", p.name || p.handle));
          li.appendChild(el("span", "muted", " @" + p.handle + " · " + p.partner));
          li.addEventListener("mousedown", function (e) { e.preventDefault(); pick(n); });
          list.appendChild(li);
        });
        list.hidden = false; area.setAttribute("aria-expanded", "true"); mark(0);
      }
      area.addEventListener("input", function () {
        query = mentionQuery(area);
        if (!query) { close(); return; }
        var mine = ++seq;
        fetch("/api/mentions?q=" + encodeURIComponent(query.text), { credentials: "same-origin" })
          .then(function (resp) { return resp.ok ? resp.json() : { items: [] }; })
          .then(function (body) { if (mine === seq) render(body.items || []); }, close);
      });
      area.addEventListener("keydown", function (e) {
        if (list.hidden) return;
        if (e.key === "ArrowDown") { e.preventDefault(); mark((active + 1) % items.length); }
        else if (e.key === "ArrowUp") { e.preventDefault(); mark((active - 1 + items.length) % items.length); }
        else if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); pick(active); }
        else if (e.key === "Escape") { e.preventDefault(); close(); }
      });
      area.addEventListener("blur", function () { setTimeout(close, 150); });
    });
  }

  // Times come in UTC; show them in the viewer's time zone, saying which.
  function localTimes(root) {
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat(undefined, {
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        timeZoneName: "short"
      });
    } catch (e) { return; }
    (root || document).querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      t.title = t.getAttribute("datetime");
      t.textContent = fmt.format(d);
    });
  }

  // A page answered to a failed form post: the address bar shows the page, not the form's
  // action, so reloading does not post again.
  function canonicalAddress() {
    var target = document.body.getAttribute("data-canonical");
    if (target && window.history && history.replaceState) history.replaceState(null, "", target);
  }

  // Choosing another operation swaps in its example input, unless the input was edited.
  function initExamples() {
    document.querySelectorAll("select[data-examples-for]").forEach(function (select) {
      var area = document.getElementById(select.getAttribute("data-examples-for"));
      if (!area) return;
      var last = area.value;
      select.addEventListener("change", function () {
        var option = select.options[select.selectedIndex];
        var example = option && option.getAttribute("data-example");
        if (example !== null && area.value === last) { area.value = example; last = example; }
      });
    });
  }

  /* ---------------------------------------------------------------- live notifications */
  // The nav's unread count, and on the notifications page the list, follow the person's
  // notification stream (Server-Sent Events relayed from the gateway). Without JavaScript
  // the count is as of the page's rendering, and the page lists everything.
  var SAYS = {
    "mention mentioned": "mentioned you", "reply replied": "replied to your thread",
    "introduction proposed": "proposed an introduction with you",
    "introduction accepted": "accepted your introduction",
    "introduction declined": "declined your introduction",
    "introduction connected": "is connected with you now",
    "broker approved": "introduced you to someone (answer the introduction)", "broker rejected": "rejected your introduction",
    "verification verified": "verified you", "verification unverified": "withdrew a verification"
  };

  function noteLink(n) {
    var id = encodeURIComponent(n.content_id || "");
    if (n.content_kind === "introduction") return "/introductions#intro-" + id;
    if (n.content_kind === "person") return "/people/" + id;
    if (n.content_kind === "company") return "/companies/" + id;
    var thread = n.thread ? encodeURIComponent(n.thread) : "";
    if (n.workspace) return "/workspaces/" + encodeURIComponent(n.workspace) + (thread ? "/threads/" + thread : "");
    return thread ? "/threads/" + thread : "/notifications";
  }

  function noteItem(n) {
    var li = el("li", "unread");
    li.id = "note-" + n.id;
    li.setAttribute("data-kind", n.kind);
    var who = el("a", "person", n.actor);
    who.href = "/people/" + encodeURIComponent(n.actor);
    who.setAttribute("data-card", n.actor);
    li.appendChild(who);
    li.appendChild(document.createTextNode(" " + (SAYS[n.kind + " " + n.action] || "notified you") + ": "));
    var link = el("a", null, n.excerpt || "see it");
    link.href = noteLink(n);
    li.appendChild(link);
    var form = el("form", "inline");
    form.method = "post";
    form.action = "/notifications/read";
    [["csrf", csrf()], ["id", String(n.id)]].forEach(function (pair) {
      var input = el("input");
      input.type = "hidden"; input.name = pair[0]; input.value = pair[1];
      form.appendChild(input);
    });
    var button = el("button", "link", "Mark read");
    button.type = "submit";
    form.appendChild(document.createTextNode(" "));
    form.appendChild(button);
    li.appendChild(form);
    return li;
  }

  function initLive() {
    var count = document.getElementById("unread-count");
    if (!count || !window.EventSource) return;
    var list = document.getElementById("notifications");
    var url = "/api/notifications/stream";
    if (list) url += "?after=" + encodeURIComponent(list.getAttribute("data-after") || "0");
    var heading = document.getElementById("notes-unread");

    function setCount(n) {
      if (typeof n !== "number") return;
      count.textContent = n > 0 ? String(n) : "";
      count.setAttribute("data-unread", String(n));
      if (heading) heading.textContent = String(n);
    }
    var source = new EventSource(url);
    source.addEventListener("open", function () { document.body.setAttribute("data-live", "open"); });
    source.addEventListener("unread", function (e) { setCount(JSON.parse(e.data).unread); });
    source.addEventListener("read", function (e) {
      var d = JSON.parse(e.data);
      setCount(d.unread);
      if (!list) return;
      list.querySelectorAll("li.unread").forEach(function (li) {
        if (!d.ids.length || d.ids.indexOf(Number(li.id.slice(5))) >= 0) li.classList.remove("unread");
      });
    });
    source.addEventListener("notification", function (e) {
      var d = JSON.parse(e.data), n = d.notification;
      setCount(d.unread);
      count.setAttribute("data-arrived", n.id + "@" + Date.now());
      if (!list || document.getElementById("note-" + n.id)) return;
      var li = noteItem(n);
      li.setAttribute("data-arrived", String(Date.now()));
      list.insertBefore(li, list.firstChild);
      var empty = document.getElementById("notes-empty");
      if (empty) empty.hidden = true;
    });
  }

  // Copy buttons (invitation link, e-mail text): select the source and copy it.
  function initCopy() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        if (!source) return;
        source.select();
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(source.value).then(done, function () {});
        } else if (document.execCommand && document.execCommand("copy")) done();
      });
    });
  }


  /* ---------------------------------------------------------------- the installable app */
  // The service worker (/sw.js) keeps the app shell and, per person, the pages to read
  // offline. Signed out, this page empties every offline cache and unsubscribes from push
  // (the server removed the subscription at sign-out, see the logout form's "push").
  var PUSH_ID = "pm-push";

  function clearOffline() {
    if (!window.caches) return Promise.resolve();
    return caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) {
        return n.indexOf("pm-pages-") === 0 || n === "pm-meta";
      }).map(function (n) { return caches.delete(n); }));
    });
  }

  function signedOut(reg) {
    try { localStorage.removeItem(PUSH_ID); } catch (e) { /* storage off */ }
    var push = reg && reg.pushManager ? reg.pushManager.getSubscription().then(function (sub) {
      return sub ? sub.unsubscribe() : false;
    }) : Promise.resolve(false);
    return Promise.all([clearOffline(), push]).then(function () {
      document.body.setAttribute("data-offline-cleared", "1");
    });
  }

  function b64urlBytes(text) {
    var pad = "=".repeat((4 - text.length % 4) % 4);
    var raw = atob((text + pad).replace(/-/g, "+").replace(/_/g, "/"));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function initPushDevice(reg) {
    var box = document.getElementById("push-device");
    if (!box || !reg || !reg.pushManager || !window.Notification) return;
    var state = document.getElementById("push-state");
    function say(text) { if (state) state.textContent = text; }
    box.hidden = false;
    document.getElementById("push-on").addEventListener("click", function () {
      Notification.requestPermission().then(function (answer) {
        if (answer !== "granted") throw new Error("notifications are not allowed in this browser");
        return reg.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: b64urlBytes(box.getAttribute("data-key"))
        });
      }).then(function (sub) {
        return fetch("/api/push/subscriptions", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify(sub.toJSON())
        });
      }).then(function (resp) {
        return resp.json().then(function (body) {
          if (!resp.ok) throw new Error(body.error || "HTTP " + resp.status);
          localStorage.setItem(PUSH_ID, body.id);
          say("This device receives pushes.");
        });
      }).catch(function (err) { say("Push could not be turned on: " + err.message); });
    });
    document.getElementById("push-off").addEventListener("click", function () {
      var id = localStorage.getItem(PUSH_ID);
      var server = id ? fetch("/api/push/subscriptions/" + encodeURIComponent(id), {
        method: "DELETE", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() }
      }) : Promise.resolve();
      server.then(function () {
        localStorage.removeItem(PUSH_ID);
        return reg.pushManager.getSubscription();
      }).then(function (sub) { return sub ? sub.unsubscribe() : false; })
        .then(function () { say("This device no longer receives pushes."); },
              function (err) { say("Could not stop: " + err.message); });
    });
  }

  function initApp() {
    var logoutPush = document.getElementById("logout-push");
    try {
      if (logoutPush) logoutPush.value = localStorage.getItem(PUSH_ID) || "";
    } catch (e) { /* storage off */ }
    if (!("serviceWorker" in navigator)) return;
    var out = document.querySelector('meta[name="pm-signed-out"]');
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function (reg) {
      document.body.setAttribute("data-sw", "registered");
      if (out) return signedOut(reg);
      initPushDevice(reg);
    }, function () { if (out) signedOut(null); });
  }

  function init() {
    initApp();
    initLive();
    initMenu(); initExamples(); initCopy(); initCards(); initPreview(); initMentions(); localTimes();
    canonicalAddress();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
