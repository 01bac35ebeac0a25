// Checking outlines: Y, N and S answer, as on /validate. An answer counts only for a
// picture that is on the screen (a key pressed before it has loaded answers nothing),
// a held key answers once, and a second answer while the first is being sent is
// dropped. Without this script the buttons post the form as they are.
(function () {
  "use strict";
  var form = document.getElementById("vote-form");
  var picture = document.getElementById("task-image");
  if (!form || !picture) return;
  var status = document.getElementById("vote-status");
  var shown = false;
  var sent = false;
  var keys = { y: "yes", n: "no", s: "skip" };

  // An SVG <image> says nothing about being loaded once it is; a probe of the same
  // (cached) file does.
  var probe = new Image();
  probe.onload = function () { shown = true; picture.setAttribute("data-shown", ""); };
  probe.src = picture.getAttribute("data-src");

  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); return; }
    sent = true;
  });

  window.addEventListener("pageshow", function () { sent = false; }); // back from the next page

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var answer = keys[event.key.toLowerCase()];
    if (!answer) return;
    event.preventDefault();
    if (event.repeat || sent) return; // a held key answers once
    if (!shown) {
      status.textContent = "Wait for the picture to appear, then answer.";
      return;
    }
    form.querySelector('button[value="' + answer + '"]').click();
  });
})();
