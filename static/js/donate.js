// Donate page enhancements: drag and drop, previews, one upload per file with
// a progress bar, and optional shrinking of large photos before sending.
// Without this script the form posts all files at once and works the same.
(function () {
  "use strict";
  var script = document.currentScript;
  var form = document.getElementById("donate-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var input = form.querySelector("input[type=file]");
  var zone = document.getElementById("drop-zone");
  var previews = document.getElementById("previews");
  var maxBytes = parseInt(script.dataset.maxBytes, 10);
  var masterSide = parseInt(script.dataset.masterSide, 10);
  var downscaleField = document.getElementById("downscale-field");
  var downscale = document.getElementById("downscale");
  var files = [];

  zone.classList.add("drop-enabled");
  zone.querySelector(".drop-hint").hidden = false;
  downscaleField.hidden = false;

  function human(bytes) {
    return bytes > 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : Math.ceil(bytes / 1024) + " KB";
  }

  function render() {
    previews.textContent = "";
    files.forEach(function (file, index) {
      var item = document.createElement("li");
      item.className = "preview";
      var img = document.createElement("img");
      img.alt = "Preview of " + file.name;
      img.width = 96;
      img.height = 96;
      img.src = URL.createObjectURL(file);
      img.onload = function () { URL.revokeObjectURL(img.src); };
      var name = document.createElement("span");
      name.className = "preview-name";
      name.textContent = file.name + " (" + human(file.size) + ")";
      var progress = document.createElement("progress");
      progress.max = 100;
      progress.value = 0;
      progress.setAttribute("aria-label", "Upload progress of " + file.name);
      progress.hidden = true;
      var status = document.createElement("span");
      status.className = "preview-status";
      status.setAttribute("role", "status");
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "secondary small";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", "Remove " + file.name);
      remove.addEventListener("click", function () { files.splice(index, 1); render(); });
      item.append(img, name, progress, status, remove);
      previews.appendChild(item);
    });
  }

  function addFiles(list) {
    Array.prototype.forEach.call(list, function (file) { if (files.length < 20) files.push(file); });
    render();
  }

  input.addEventListener("change", function () { files = []; addFiles(input.files); });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  });

  // Shrink a photo whose long side exceeds the stored size. The server stores at
  // most that size, so nothing is lost; only JPEG/WebP photos are re-encoded.
  function shrink(file) {
    if (!downscale.checked || !window.createImageBitmap || file.type === "image/png") {
      return Promise.resolve(file);
    }
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bitmap) {
      var side = Math.max(bitmap.width, bitmap.height);
      if (side <= masterSide) { bitmap.close(); return file; }
      var scale = masterSide / side;
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) {
          resolve(blob ? new File([blob], file.name, { type: "image/jpeg" }) : file);
        }, "image/jpeg", 0.92);
      });
    }).catch(function () { return file; });
  }

  function send(file, item, batch) {
    var progress = item.querySelector("progress");
    var status = item.querySelector(".preview-status");
    progress.hidden = false;
    status.textContent = "Preparing…";
    return shrink(file).then(function (ready) {
      if (ready.size > maxBytes) {
        status.textContent = "Too large: " + human(ready.size) + " (the limit is " + human(maxBytes) + ").";
        item.classList.add("failed");
        return null;
      }
      return new Promise(function (resolve) {
        var data = new FormData(form);
        data.delete("images");
        data.append("images", ready, file.name);
        data.append("batch", batch);
        var request = new XMLHttpRequest();
        request.open("POST", form.action);
        request.setRequestHeader("Accept", "application/json");
        request.upload.addEventListener("progress", function (event) {
          if (event.lengthComputable) progress.value = Math.round((event.loaded / event.total) * 100);
        });
        request.addEventListener("load", function () {
          var answer = {};
          try { answer = JSON.parse(request.responseText); } catch (error) { answer = {}; }
          progress.value = 100;
          status.textContent = answer.message || answer.error || ("The server answered " + request.status + ".");
          item.classList.add(request.status === 201 ? "done" : "failed");
          resolve(answer.result_url || null);
        });
        request.addEventListener("error", function () {
          status.textContent = "The upload failed; check your connection and try again.";
          item.classList.add("failed");
          resolve(null);
        });
        request.send(data);
      });
    });
  }

  form.addEventListener("submit", function (event) {
    var cc0 = form.querySelector("input[name=cc0]");
    // Let the server explain missing pieces in plain words.
    if (!files.length || !cc0.checked) return;
    event.preventDefault();
    var button = document.getElementById("donate-submit");
    button.disabled = true;
    var batch = Array.from(crypto.getRandomValues(new Uint8Array(8)), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
    var items = previews.querySelectorAll(".preview");
    var resultUrl = null;
    files.reduce(function (chain, file, index) {
      return chain.then(function () {
        return send(file, items[index], batch).then(function (url) { resultUrl = url || resultUrl; });
      });
    }, Promise.resolve()).then(function () {
      if (resultUrl) window.location.assign(resultUrl);
      else button.disabled = false;
    });
  });
})();
