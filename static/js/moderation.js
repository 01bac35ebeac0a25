// Keyboard moderation for the admin queue: arrows move between pictures,
// Space selects, A/R/Q decide about the selection (U undoes a rejection), X selects all.
(function () {
  "use strict";
  var form = document.getElementById("queue-form");
  if (!form) return;
  var picks = Array.prototype.slice.call(form.querySelectorAll(".queue-pick"));
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "checkbox")) return;
    var index = picks.indexOf(document.activeElement);
    var key = event.key.toLowerCase();
    if (key === "arrowright" || key === "arrowleft") {
      var next = index + (key === "arrowright" ? 1 : -1);
      if (index < 0) next = 0;
      if (picks[next]) { picks[next].focus(); event.preventDefault(); }
    } else if (key === "x") {
      var all = picks.some(function (p) { return !p.checked; });
      picks.forEach(function (p) { p.checked = all; });
    } else if (key === "a" || key === "r" || key === "q" || key === "u") {
      var button = form.querySelector('button[data-key="' + key + '"]');
      if (button && picks.some(function (p) { return p.checked; })) {
        event.preventDefault();
        button.click();
      }
    }
  });
})();
