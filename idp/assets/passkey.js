// Passkey buttons of the login pages (W3C WebAuthn Level 3). A form with `data-passkey`
// carries the server's options (JSON with base64url binary fields); on submit the browser
// is asked for a credential, whose answer is posted back as JSON in the `credential` field.
// On the login page a conditional request (§5.1.4.1, "autofill") also runs, so a passkey
// can be picked straight from the username field.
"use strict";
(function () {
  const fromB64url = (text) => {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
  };
  const toB64url = (buffer) => {
    let raw = "";
    for (const byte of new Uint8Array(buffer)) raw += String.fromCharCode(byte);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));

  const creationOptions = (options) => {
    const pk = options.publicKey;
    return {
      publicKey: {
        ...pk,
        challenge: fromB64url(pk.challenge),
        user: { ...pk.user, id: fromB64url(pk.user.id) },
        excludeCredentials: withIds(pk.excludeCredentials),
      },
    };
  };
  const requestOptions = (options) => {
    const pk = options.publicKey;
    return {
      publicKey: { ...pk, challenge: fromB64url(pk.challenge), allowCredentials: withIds(pk.allowCredentials) },
    };
  };

  const answerJson = (credential) => {
    const r = credential.response;
    const response = r.attestationObject
      ? {
          clientDataJSON: toB64url(r.clientDataJSON),
          attestationObject: toB64url(r.attestationObject),
          transports: typeof r.getTransports === "function" ? r.getTransports() : undefined,
        }
      : {
          clientDataJSON: toB64url(r.clientDataJSON),
          authenticatorData: toB64url(r.authenticatorData),
          signature: toB64url(r.signature),
          userHandle: r.userHandle ? toB64url(r.userHandle) : null,
        };
    return JSON.stringify({
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
    });
  };

  const fail = (form, message) => {
    const slot = form.querySelector(".passkey-error");
    if (slot) {
      slot.textContent = message;
      slot.hidden = false;
    }
  };

  const post = (form, credential) => {
    form.querySelector('input[name="credential"]').value = answerJson(credential);
    form.submit();
  };

  for (const form of document.querySelectorAll("form[data-passkey]")) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      fail(form, "This browser cannot use passkeys.");
      continue;
    }
    const options = JSON.parse(form.dataset.options);
    const mode = form.dataset.passkey;
    let autofill = null;

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (autofill) autofill.abort();
      try {
        const credential =
          mode === "create"
            ? await navigator.credentials.create(creationOptions(options))
            : await navigator.credentials.get(requestOptions(options));
        if (credential) post(form, credential);
      } catch (error) {
        fail(form, mode === "create" ? "No passkey was created." : "No passkey was used.");
      }
    });

    // Sign-in without a username: offer passkeys in the username field's autofill.
    // Not again after a passkey just failed: the button is there for a deliberate retry.
    const autofillWanted = options.mediation === "conditional" && form.dataset.autofill !== "off";
    if (mode === "get" && autofillWanted && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(async (available) => {
        if (!available) return;
        autofill = new AbortController();
        try {
          const credential = await navigator.credentials.get({
            ...requestOptions(options),
            mediation: "conditional",
            signal: autofill.signal,
          });
          if (credential) post(form, credential);
        } catch (error) {
          // Aborted by the button, or dismissed: the button still works.
        }
      });
    }
  }
})();
