// Grid mode: arrow keys move between pictures (Space marks one, as for any
// checkbox); the send button says how many are marked. Zoom, Z on a picture or a
// long press shows the whole picture in a dialog (without this script, Zoom opens it).
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

  var dialog = document.createElement("dialog");
  dialog.className = "zoom";
  dialog.setAttribute("aria-label", "The whole picture");
  var big = document.createElement("img");
  var close = document.createElement("button");
  close.type = "button";
  close.className = "secondary";
  close.textContent = "Close";
  close.addEventListener("click", function () { dialog.close(); });
  dialog.appendChild(big);
  dialog.appendChild(close);
  dialog.addEventListener("click", function (event) { if (event.target === dialog) dialog.close(); });
  document.body.appendChild(dialog);

  function zoom(item) {
    var link = item.querySelector("[data-zoom]");
    var small = item.querySelector("img");
    big.src = link.href;
    big.alt = small.alt + ", whole";
    big.width = small.width;
    big.height = small.height;
    dialog.showModal();
    close.focus();
  }

  picks.forEach(function (pick, index) {
    var item = pick.parentNode;
    // Grids of crops (the outline check) have no whole picture to show.
    var zoomable = item.querySelector("[data-zoom]") !== null;
    if (zoomable) {
      item.querySelector("[data-zoom]").addEventListener("click", function (event) {
        event.preventDefault();
        zoom(item);
      });
    }
    // A long press on a touch screen shows the picture instead of marking it.
    var timer = null, pressed = false;
    var choice = item.querySelector(".grid-choice");
    choice.addEventListener("pointerdown", function (event) {
      if (event.pointerType === "mouse" || !zoomable) return;
      pressed = false;
      timer = window.setTimeout(function () { pressed = true; zoom(item); }, 500);
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      choice.addEventListener(name, function () { window.clearTimeout(timer); });
    });
    choice.addEventListener("click", function (event) {
      if (pressed) { pressed = false; event.preventDefault(); }
    });
    choice.addEventListener("contextmenu", function (event) { if (pressed) event.preventDefault(); });
    pick.addEventListener("change", update);
    pick.addEventListener("keydown", function (event) {
      if (zoomable && (event.key === "z" || event.key === "Z")) { event.preventDefault(); zoom(item); return; }
      var columns = Math.max(1, Math.round(form.querySelector(".vote-grid").clientWidth / pick.parentNode.clientWidth));
      var moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
      if (!(event.key in moves)) return;
      var next = picks[index + moves[event.key]];
      if (next) { next.focus(); event.preventDefault(); }
    });
  });
  update();
})();
