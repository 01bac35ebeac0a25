// Grid mode: arrow keys move between pictures (Space marks one, as for any
// checkbox); the send button says how many are marked.
(function () {
  "use strict";
  var form = document.getElementById("grid-form");
  if (!form) return;
  var picks = Array.prototype.slice.call(form.querySelectorAll(".grid-pick"));
  var button = form.querySelector("button[type=submit]");
  var total = picks.length;

  function update() {
    var marked = picks.filter(function (p) { return p.checked; }).length;
    button.textContent = "Send " + total + " answers (" + marked + " marked)";
  }

  picks.forEach(function (pick, index) {
    pick.addEventListener("change", update);
    pick.addEventListener("keydown", function (event) {
      var columns = Math.max(1, Math.round(form.querySelector(".vote-grid").clientWidth / pick.parentNode.clientWidth));
      var moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
      if (!(event.key in moves)) return;
      var next = picks[index + moves[event.key]];
      if (next) { next.focus(); event.preventDefault(); }
    });
  });
  update();
})();
