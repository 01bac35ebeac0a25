// /verify framed by a browser extension: the answer goes to the API (a framed page gets
// no cookies, so no form post can carry a CSRF token), then the page thanks the visitor
// or shows the next picture, and with callback=true tells the framing page
// "done button pressed". Not framed, or without fetch, the form posts as /validate's does.
(function () {
  "use strict";
  var root = document.getElementById("embed");
  var form = document.getElementById("vote-form");
  if (!root || !form || window.top === window || !window.fetch) return;
  var status = document.getElementById("vote-status");
  // Origins hold no spaces (the setting refuses anything but origins).
  var origins = root.dataset.parentOrigins.split(" ").filter(Boolean);
  var busy = false;

  function notify() {
    if (root.dataset.callback !== "true") return;
    // Only an allowed origin can receive it: a page framing us from elsewhere gets nothing.
    origins.forEach(function (origin) { window.parent.postMessage("done button pressed", origin); });
  }

  function finish() {
    notify();
    if (root.dataset.onlyOnce === "true") {
      document.getElementById("embed-task").hidden = true;
      document.getElementById("embed-done").hidden = false;
      status.textContent = "Thank you! Your answer was recorded.";
    } else {
      window.location.reload();
    }
  }

  function answer(value) {
    if (busy) return;
    busy = true;
    if (value === "skip") { finish(); return; }
    fetch(root.dataset.voteApi + value, {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        label: root.dataset.label,
        sublabel: root.dataset.sublabel,
        ticket: root.dataset.ticket,
      }),
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      busy = false;
      if (!result.ok) {
        status.textContent = result.body.error || "That did not work; please try again.";
        return;
      }
      finish();
    }).catch(function () {
      busy = false;
      status.textContent = "Your answer was not sent: the connection failed. Answer again to retry.";
    });
  }

  form.addEventListener("submit", function (event) {
    if (!event.submitter) return;
    event.preventDefault();
    answer(event.submitter.value);
  });
})();
