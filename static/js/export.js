// Export page enhancements: a live count of the matching images while the
// form changes, and a download link that follows the form. Without this
// script the Preview button does both on the server.
(function () {
  "use strict";
  var form = document.getElementById("export-form");
  if (!form || !window.fetch || !window.URLSearchParams) return;
  var live = document.getElementById("live-count");
  var timer = null;
  var latest = 0; // answers to older requests are dropped

  function parameters() {
    var data = new URLSearchParams();
    ["query", "min_probability", "min_confidence", "status", "split", "seed"].forEach(function (name) {
      var value = form.elements[name].value.trim();
      if (value) data.set(name, value);
    });
    if (form.elements.negatives.checked) data.set("negatives", "true");
    var format = form.querySelector('input[name="format"]:checked');
    data.set("format", format ? format.value : "json");
    // The formats that hold the pictures (exports.export.IMAGE_FORMATS) take a layout and a size.
    if (["tar", "parquet", "hf", "webdataset"].indexOf(data.get("format")) >= 0) {
      var layout = form.querySelector('input[name="layout"]:checked');
      if (layout) data.set("layout", layout.value);
      data.set("size", form.elements.size.value);
    }
    return data;
  }

  function followForm(download, data) {
    var format = form.querySelector('input[name="format"]:checked');
    download.href = form.dataset.exportUrl + "?" + data.toString();
    if (format) {
      download.textContent = "Download as " + format.labels[0].querySelector("strong").textContent;
    }
    download.hidden = false;
  }

  function show(answer, data) {
    var download = document.getElementById("download");
    if (answer.ok) {
      var n = answer.body.images;
      live.textContent = n.toLocaleString() + (n === 1 ? " image matches" : " images match") +
        " the form as it is now.";
      // A link that would download nothing is hidden (the preview explains an empty one).
      if (download && download.tagName === "A") {
        if (n > 0) followForm(download, data);
        else download.hidden = true;
      }
    } else {
      live.textContent = answer.body.error || "The count is not available right now.";
      if (download) download.hidden = true;
    }
  }

  function update() {
    var data = parameters();
    if (!data.get("query")) {
      live.textContent = "";
      return;
    }
    var request = ++latest;
    fetch(form.dataset.countUrl + "?" + data.toString(), { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) { if (request === latest) show(answer, data); })
      .catch(function () { if (request === latest) live.textContent = ""; });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(update, 400);
  }

  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
})();
