/* partnermesh portal service worker: the app shell, pages to read offline, Web Push.

   - App shell (styles, script, icons, the offline page): cached at install, served
     network-first with the cache as fallback.
   - Pages: network first. A signed-in page of a kind readable offline (a thread, a
     profile, a company, the introductions) is kept in its person's cache
     ("pm-pages-<key>", the X-PM-Offline header of the page); without the network, the
     same person gets it from there. Other pages are never cached; nor is anything that
     is not a GET (posts), nor /api/ or /auth/.
   - The signed-out page (X-PM-Signed-Out), and going to sign in (a session that ended
     elsewhere, e.g. a back-channel logout, sends there), empty every person's cache: what
     was kept for them goes with their session.
   - Push: each push (decrypted by the browser) is shown; a click opens its page. */
"use strict";

var SHELL = "pm-shell-v1";
var PAGES = "pm-pages-";
var META = "pm-meta";
var SHELL_FILES = [
  "/static/portal.css", "/static/portal.js", "/static/favicon.svg", "/static/offline.html",
  "/static/icons/icon-192.png", "/static/icons/icon-512.png", "/static/icons/maskable-512.png",
  "/manifest.webmanifest"
];
var OFFLINE_PAGES = [
  /^\/threads\/[^/]+$/, /^\/workspaces\/[^/]+\/threads\/[^/]+$/, /^\/people\/[^/]+$/,
  /^\/companies\/[^/]+$/, /^\/introductions$/
];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(SHELL).then(function (cache) { return cache.addAll(SHELL_FILES); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) {
      return n.indexOf("pm-shell-") === 0 && n !== SHELL;
    }).map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function readable(path) {
  return OFFLINE_PAGES.some(function (re) { return re.test(path); });
}

function forgetEveryone() {
  return caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) {
      return n.indexOf(PAGES) === 0 || n === META;
    }).map(function (n) { return caches.delete(n); }));
  });
}

function whoIsIn() {
  return caches.open(META).then(function (c) { return c.match("/__offline-key"); })
    .then(function (r) { return r ? r.text() : ""; });
}

function remember(key) {
  return caches.open(META).then(function (c) {
    return c.put("/__offline-key", new Response(key, { headers: { "Content-Type": "text/plain" } }));
  });
}

function page(request, url) {
  return fetch(request).then(function (response) {
    var key = response.headers.get("X-PM-Offline") || "";
    if (response.headers.get("X-PM-Signed-Out")) {
      return forgetEveryone().then(function () { return response; });
    }
    if (key && response.ok && readable(url.pathname)) {
      var copy = response.clone();
      return whoIsIn().then(function (before) {
        var clear = before && before !== key ? forgetEveryone() : Promise.resolve();
        return clear.then(function () { return remember(key); })
          .then(function () { return caches.open(PAGES + key); })
          .then(function (c) { return c.put(url.pathname, copy); })
          .then(function () { return response; });
      });
    }
    return response;
  }, function () {
    return whoIsIn().then(function (key) {
      var kept = key && readable(url.pathname)
        ? caches.open(PAGES + key).then(function (c) { return c.match(url.pathname); })
        : Promise.resolve(undefined);
      return kept.then(function (found) {
        return found || caches.match("/static/offline.html", { cacheName: SHELL });
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === "/auth/login") {
    // Only a browser that is not (any longer) signed in is sent here.
    event.respondWith(Promise.all([forgetEveryone(), unsubscribe()]).then(function () {
      return fetch(request);
    }));
    return;
  }
  if (url.pathname.indexOf("/api/") === 0 || url.pathname.indexOf("/auth/") === 0) return;
  if (request.mode === "navigate") {
    event.respondWith(page(request, url));
  } else if (SHELL_FILES.indexOf(url.pathname) >= 0) {
    event.respondWith(fetch(request).catch(function () {
      return caches.match(url.pathname, { cacheName: SHELL });
    }));
  }
});

self.addEventListener("message", function (event) {
  if (event.data === "signed-out") event.waitUntil(forgetEveryone());
});

function unsubscribe() {
  return self.registration.pushManager.getSubscription().then(function (sub) {
    return sub ? sub.unsubscribe() : false;
  }).catch(function () { return false; });
}

// A push is shown only while its person is still signed in here. Signed out elsewhere (a
// back-channel logout, an expired session): nothing of it is shown, this browser
// unsubscribes (the push service then answers 410 and the subscription is deleted) and
// the offline pages go.
self.addEventListener("push", function (event) {
  var message = {};
  try { message = event.data ? event.data.json() : {}; } catch (e) { message = {}; }
  function show() {
    return self.registration.showNotification(message.title || "partnermesh", {
      body: message.body || "", icon: "/static/icons/icon-192.png",
      tag: message.notification ? "note-" + message.notification : undefined,
      data: { url: message.url || "/notifications" }
    });
  }
  event.waitUntil(fetch("/api/session", { credentials: "same-origin" }).then(function (resp) {
    if (resp.status !== 401) return show();
    return Promise.all([unsubscribe(), forgetEveryone()]).then(function () {
      return self.registration.showNotification("partnermesh", {
        body: "You were signed out: this device no longer receives notifications.",
        icon: "/static/icons/icon-192.png", data: { url: "/" }
      });
    });
  }, show));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  if (target.origin !== self.location.origin) target = new URL("/notifications", self.location.origin);
  event.waitUntil(self.clients.openWindow(target.href));
});
