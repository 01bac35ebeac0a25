// Donate page enhancements: drag and drop, previews, checks before anything is sent,
// one upload per file with real progress, Remove and Cancel that really stop (or
// withdraw) an upload, and optional shrinking of large photos before sending.
// The limits are the server's: at most `maxFiles` photos and `maxBytes` in all per
// donation, JPEG, PNG or WebP. Without this script the form posts all files at once
// and the server checks the same limits.
(function () {
  "use strict";
  var script = document.currentScript;
  var form = document.getElementById("donate-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var input = form.querySelector("input[type=file]");
  var zone = document.getElementById("drop-zone");
  var previews = document.getElementById("previews");
  var problems = document.getElementById("donate-problems");
  var overall = document.getElementById("donate-progress");
  var cancel = document.getElementById("donate-cancel");
  var button = document.getElementById("donate-submit");
  var cc0 = form.querySelector("input[name=cc0]");
  var maxBytes = parseInt(script.dataset.maxBytes, 10);
  var maxFiles = parseInt(script.dataset.maxFiles, 10);
  var masterSide = parseInt(script.dataset.masterSide, 10);
  var withdrawUrl = script.dataset.withdrawUrl; // ends in /00000000-…/withdraw
  var downscaleField = document.getElementById("downscale-field");
  var downscale = document.getElementById("downscale");
  var types = ["image/jpeg", "image/png", "image/webp"];
  var entries = []; // {file, item, state: "ready"|"sending"|"sent"|"failed"|"removed", request, uuid}
  var cancelled = false;

  zone.classList.add("drop-enabled");
  zone.querySelector(".drop-hint").hidden = false;
  downscaleField.hidden = false;
  // The browser keeps the chosen files in `entries`; the input itself is only a way in.
  input.required = false;

  function human(bytes) {
    return bytes > 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : Math.ceil(bytes / 1024) + " KB";
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function problemOf(file) {
    if (file.size === 0) return "the file is empty (0 bytes)";
    if (types.indexOf(file.type) < 0) return "not a JPEG, PNG or WebP photo";
    if (file.size > maxBytes && (file.type === "image/png" || !downscale.checked)) {
      return "too large: " + human(file.size) + " (the limit is " + human(maxBytes) + ")";
    }
    return "";
  }

  function add(file) {
    var entry = { file: file, state: "ready" };
    var item = element("li", "preview");
    var img = element("img");
    img.alt = "Preview of " + file.name;
    img.width = 96;
    img.height = 96;
    if (types.indexOf(file.type) >= 0 && file.size > 0) {
      img.src = URL.createObjectURL(file);
      img.onload = function () { URL.revokeObjectURL(img.src); };
    }
    var name = element("span", "preview-name", file.name + " (" + human(file.size) + ")");
    var progress = element("progress");
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute("aria-label", "Upload progress of " + file.name);
    progress.hidden = true;
    var status = element("span", "preview-status");
    var remove = element("button", "secondary small", "Remove");
    remove.type = "button";
    remove.setAttribute("aria-label", "Remove " + file.name);
    remove.addEventListener("click", function () { removeEntry(entry); });
    // Labels for this photo alone, sent with it after the donation's own.
    var own = element("span", "preview-labels");
    var ownId = "photo-labels-" + entries.length;
    var ownLabel = element("label", "", "Labels for this photo");
    ownLabel.htmlFor = ownId;
    var ownInput = element("input");
    ownInput.type = "text";
    ownInput.id = ownId;
    ownInput.setAttribute("list", "label-names");
    ownInput.autocomplete = "off";
    own.append(ownLabel, ownInput);
    item.append(img, name, own, progress, status, remove);
    entry.labels = ownInput;
    entry.item = item;
    entry.status = status;
    entry.progress = progress;
    previews.appendChild(item);
    entries.push(entry);
  }

  function live() {
    return entries.filter(function (entry) { return entry.state !== "removed"; });
  }

  function removeEntry(entry) {
    var was = entry.state;
    entry.state = "removed";
    if (was === "sending" && entry.request) entry.request.abort();
    if (was === "sent" && entry.uuid) {
      withdraw(entry);
      return;
    }
    entry.item.remove();
    check();
  }

  function withdraw(entry) {
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
    entry.status.textContent = "Withdrawing…";
    fetch(withdrawUrl.replace(/[0-9a-f-]{36}/, entry.uuid), {
      method: "POST",
      body: data,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (result.ok) { entry.item.remove(); return; }
      entry.status.textContent = result.body.error || "It could not be withdrawn.";
    }).catch(function () {
      entry.status.textContent = "It could not be withdrawn: the connection failed.";
    });
  }

  // Every problem is named before anything is sent; nothing chosen is ever dropped.
  function check() {
    var list = [];
    var chosen = live().filter(function (entry) { return entry.state === "ready"; });
    chosen.forEach(function (entry, index) {
      var problem = problemOf(entry.file);
      if (!problem && index >= maxFiles) problem = "more than " + maxFiles + " photos at once; donate it next time";
      entry.problem = problem;
      entry.item.classList.toggle("failed", Boolean(problem));
      entry.status.textContent = problem ? "Will not be sent: " + problem + "." : "";
      if (problem) list.push(entry.file.name + ": " + problem);
    });
    problems.textContent = "";
    list.forEach(function (text) { problems.appendChild(element("li", "", text)); });
    problems.hidden = list.length === 0;
    return chosen.filter(function (entry) { return !entry.problem; });
  }

  function addFiles(fileList) {
    Array.prototype.forEach.call(fileList, add);
    check();
  }

  input.addEventListener("change", function () { addFiles(input.files); input.value = ""; });
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

  function send(entry, batch, budget) {
    if (entry.state === "removed" || cancelled) return Promise.resolve(null);
    entry.progress.hidden = false;
    entry.status.textContent = "Preparing…";
    return shrink(entry.file).then(function (ready) {
      if (entry.state === "removed" || cancelled) return null;
      if (ready.size > budget.left) {
        entry.state = "failed";
        entry.status.textContent = "Not sent: the photos of one donation may be " + human(maxBytes) +
          " in all; donate this one next time.";
        entry.item.classList.add("failed");
        return null;
      }
      budget.left -= ready.size;
      return new Promise(function (resolve) {
        var data = new FormData(form);
        data.delete("images");
        data.append("images", ready, entry.file.name);
        var labels = [form.elements.labels.value, entry.labels.value].filter(function (text) {
          return text.trim();
        });
        data.set("labels", labels.join(", "));
        data.append("batch", batch);
        var request = new XMLHttpRequest();
        entry.request = request;
        entry.state = "sending";
        request.open("POST", form.action);
        request.setRequestHeader("Accept", "application/json");
        request.upload.addEventListener("progress", function (event) {
          if (!event.lengthComputable) return;
          var percent = Math.round((event.loaded / event.total) * 100);
          entry.progress.value = percent;
          entry.status.textContent = percent < 100 ? "Sending… " + percent + " %" : "Checking the picture…";
        });
        request.addEventListener("load", function () {
          var answer = {};
          try { answer = JSON.parse(request.responseText); } catch (error) { answer = {}; }
          entry.progress.value = 100;
          entry.uuid = answer.uuid || null;
          if (entry.state === "removed") { // removed while the server was answering
            if (request.status === 201 && entry.uuid) { entry.state = "sent"; removeEntry(entry); }
            resolve(null);
            return;
          }
          entry.state = request.status === 201 ? "sent" : "failed";
          entry.status.textContent = answer.message || answer.error || ("The server answered " + request.status + ".");
          entry.item.classList.add(request.status === 201 ? "done" : "failed");
          resolve(answer.result_url || null);
        });
        request.addEventListener("abort", function () { resolve(null); });
        request.addEventListener("error", function () {
          entry.state = "failed";
          entry.status.textContent = "The upload failed; check your connection and try again.";
          entry.item.classList.add("failed");
          resolve(null);
        });
        request.send(data);
      });
    });
  }

  form.addEventListener("submit", function (event) {
    var sendable = check();
    if (!live().length) return; // nothing chosen: the server says so in plain words
    event.preventDefault();
    var cc0Error = document.getElementById("cc0-problem");
    if (!cc0.checked) {
      cc0Error.hidden = false;
      cc0.focus();
      return; // every photo stays chosen
    }
    cc0Error.hidden = true;
    if (!sendable.length) { problems.focus(); return; }
    button.disabled = true;
    cancelled = false;
    cancel.hidden = false;
    var batch = Array.from(crypto.getRandomValues(new Uint8Array(8)), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
    var budget = { left: maxBytes };
    var resultUrl = null;
    var done = 0;
    overall.hidden = false;
    overall.max = sendable.length;
    overall.value = 0;
    sendable.reduce(function (chain, entry) {
      return chain.then(function () {
        return send(entry, batch, budget).then(function (url) {
          resultUrl = url || resultUrl;
          done += 1;
          overall.value = done;
          overall.textContent = done + " of " + sendable.length;
        });
      });
    }, Promise.resolve()).then(function () {
      cancel.hidden = true;
      button.disabled = false;
      var kept = entries.some(function (entry) { return entry.state === "sent"; });
      if (resultUrl && kept && !cancelled) window.location.assign(resultUrl);
    });
  });

  cancel.addEventListener("click", function () {
    cancelled = true;
    entries.forEach(function (entry) {
      if (entry.state === "sending" && entry.request) {
        entry.state = "ready";
        entry.request.abort();
        entry.status.textContent = "Cancelled; not sent.";
        entry.progress.hidden = true;
      }
    });
    cancel.hidden = true;
  });

  cc0.addEventListener("change", function () {
    if (cc0.checked) document.getElementById("cc0-problem").hidden = true;
  });
})();
