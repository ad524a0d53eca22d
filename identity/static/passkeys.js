// Passkeys on identity's pages: the sign-in page's "Sign in with a passkey", the second
// step's "Use a passkey" and the account page's "Add a passkey". Served from 'self' (the
// pages' CSP allows no inline script). Each form names its options endpoint in
// data-options; the script fetches the options (POST, the form's CSRF token in X-CSRF-Token), runs the WebAuthn ceremony,
// puts the credential's JSON in the form's "credential" field and submits the form.
// Without WebAuthn the buttons stay hidden and the page works as before.
(function () {
  "use strict";

  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    b64 += "===".slice((b64.length + 3) % 4);
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64url(c.id) });
    });
  }

  function creationOptions(o) {
    return Object.assign({}, o, {
      challenge: fromB64url(o.challenge),
      user: Object.assign({}, o.user, { id: fromB64url(o.user.id) }),
      excludeCredentials: descriptors(o.excludeCredentials),
    });
  }

  function requestOptions(o) {
    return Object.assign({}, o, {
      challenge: fromB64url(o.challenge),
      allowCredentials: descriptors(o.allowCredentials),
    });
  }

  function common(cred) {
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      clientExtensionResults: cred.getClientExtensionResults(),
    };
  }

  function attestationJSON(cred) {
    var r = cred.response;
    return Object.assign(common(cred), {
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        attestationObject: toB64url(r.attestationObject),
        transports: typeof r.getTransports === "function" ? r.getTransports() : [],
      },
    });
  }

  function assertionJSON(cred) {
    var r = cred.response;
    return Object.assign(common(cred), {
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        authenticatorData: toB64url(r.authenticatorData),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null,
      },
    });
  }

  async function fetchOptions(form) {
    var reply = await fetch(form.dataset.options, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "X-CSRF-Token": form.elements.csrf_token.value,
      },
    });
    if (!reply.ok) {
      var detail = "";
      try {
        detail = (await reply.json()).detail || "";
      } catch (ignored) {
        detail = "";
      }
      throw new Error(detail || "The server refused (" + reply.status + ").");
    }
    return reply.json();
  }

  function explain(err) {
    if (err && err.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out.";
    }
    if (err && err.name === "InvalidStateError") {
      return "This authenticator holds a passkey of yours already.";
    }
    return (err && err.message) || "The passkey could not be used.";
  }

  function wire(form, ceremony) {
    var button = form.querySelector("[data-passkey-button]");
    var error = form.querySelector("[data-passkey-error]");
    button.hidden = false;
    form.addEventListener("submit", async function (event) {
      if (form.elements.credential.value) return; // the ceremony's own submit
      event.preventDefault();
      error.hidden = true;
      button.disabled = true;
      try {
        var options = await fetchOptions(form);
        var credential = await ceremony(options);
        form.elements.credential.value = JSON.stringify(credential);
        form.submit();
      } catch (err) {
        error.textContent = explain(err);
        error.hidden = false;
        button.disabled = false;
      }
    });
  }

  if (!window.PublicKeyCredential || !navigator.credentials) return;

  ["passkey-signin", "passkey-second-factor"].forEach(function (id) {
    var form = document.getElementById(id);
    if (!form) return;
    wire(form, async function (options) {
      var cred = await navigator.credentials.get({ publicKey: requestOptions(options) });
      return assertionJSON(cred);
    });
  });

  var register = document.getElementById("passkey-register");
  if (register) {
    wire(register, async function (options) {
      var cred = await navigator.credentials.create({ publicKey: creationOptions(options) });
      return attestationJSON(cred);
    });
  }
})();
