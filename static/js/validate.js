// Voting enhancements: keyboard answers, swipes on touch screens, votes sent
// without a page reload, and the next picture preloaded. An answer counts only
// for a picture that is on the screen: a held key's auto-repeat, or a key pressed
// before the next picture has appeared, answers nothing. Without this script
// the form posts and the server redirects to the next task.
(function () {
  "use strict";
  var form = document.getElementById("vote-form");
  if (!form) return;
  var image = document.getElementById("task-image");
  var question = document.getElementById("question");
  var description = document.getElementById("description");
  var status = document.getElementById("vote-status");
  var answered = document.getElementById("answered");
  var feedback = document.getElementById("feedback");
  var undoForm = document.getElementById("undo-form");
  var undoTimer = null;
  var preloaded = null; // the task after the current one, its image already fetched
  var busy = false;
  var shown = false; // the picture is on the screen (and image.dataset.shown says so)

  function showing(yes) {
    shown = yes;
    if (yes) image.dataset.shown = "";
    else delete image.dataset.shown;
  }
  showing(image.complete && image.naturalWidth > 0);
  image.addEventListener("load", function () { showing(true); });

  var keys = { y: "yes", arrowright: "yes", n: "no", arrowleft: "no", s: "skip", arrowdown: "skip" };

  // After an answer: what the crowd says about it, and Undo while it may be undone.
  function showAnswered(info) {
    answered.hidden = false;
    feedback.textContent = "Answer saved. " + info.feedback;
    undoForm.elements.pair.value = info.pair;
    undoForm.hidden = !info.undo_url;
    window.clearTimeout(undoTimer);
    undoTimer = window.setTimeout(function () { undoForm.hidden = true; }, info.undo_seconds * 1000);
  }

  function post(url, data) {
    return fetch(url, {
      method: "POST",
      body: data,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    });
  }

  function undo() {
    if (busy || undoForm.hidden) return;
    busy = true;
    post(undoForm.action, new FormData(undoForm)).then(function (result) {
      busy = false;
      if (!result.ok) {
        undoForm.hidden = true;
        status.textContent = result.body.error || "That answer could not be undone.";
        feedback.textContent = status.textContent;
        return;
      }
      answered.hidden = true;
      if (!result.body.next) { window.location.assign(result.body.done_url); return; }
      preload(null); // the server chooses what follows, as on a first visit
      show(result.body.next);
      status.textContent = "Your answer was taken back. Question: " + result.body.next.question;
    }).catch(function () {
      busy = false;
      status.textContent = "The answer was not undone: the connection failed. Try again.";
      feedback.textContent = status.textContent;
    });
  }

  function show(task) {
    form.action = task.vote_url;
    form.elements.ticket.value = task.ticket;
    question.textContent = task.question;
    document.title = task.question + " · ImageMonkey";
    description.textContent = task.description;
    image.width = task.width;
    image.height = task.height;
    image.alt = "The picture to judge. " + task.question;
    showing(false);
    image.src = task.image_url;
    if (image.complete && image.naturalWidth > 0) showing(true); // preloaded: already here
  }

  function preload(task) {
    preloaded = task;
    if (task) { var img = new Image(); img.src = task.image_url; }
  }

  function send(answer) {
    if (busy) return;
    if (!shown) {
      status.textContent = "Wait for the picture to appear, then answer.";
      return;
    }
    busy = true;
    var data = new FormData(form);
    data.append("answer", answer);
    if (preloaded) {
      data.append("prefer", preloaded.pair);
      data.append("prefer_ticket", preloaded.ticket);
    }
    post(form.action, data).then(function (result) {
      busy = false;
      if (!result.ok) {
        status.textContent = result.body.error || "That did not work; please try again.";
        if (result.body.error) window.alert(result.body.error);
        return;
      }
      if (!result.body.next) {
        window.location.assign(result.body.done_url + (result.body.done_url.indexOf("?") < 0 ? "?" : "&") + "answered=" + result.body.answered.pair);
        return;
      }
      show(result.body.next);
      preload(result.body.then);
      showAnswered(result.body.answered);
      // Screen readers hear what happened and the next question (the heading changed
      // silently): one polite announcement.
      status.textContent = "Answer saved. " + result.body.answered.feedback +
        " Next question: " + result.body.next.question;
    }).catch(function () {
      // The network failed: nothing was recorded, and the page stays as it is, so the
      // person can answer again once the connection is back.
      busy = false;
      status.textContent = "Your answer was not sent: the connection failed. Answer again to retry.";
      failure.textContent = status.textContent;
      failure.hidden = false;
    });
  }

  var failure = document.createElement("p");
  failure.className = "message message-error";
  failure.hidden = true;
  form.parentNode.insertBefore(failure, form);
  form.addEventListener("submit", function () { failure.hidden = true; }, true);

  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || !window.fetch) return;
    event.preventDefault();
    send(button.value);
  });

  if (undoForm) {
    undoForm.addEventListener("submit", function (event) {
      if (!window.fetch) return;
      event.preventDefault();
      undo();
    });
  }

  // The first-visit explanation goes away without leaving the picture.
  var tutorialForm = document.getElementById("tutorial-form");
  if (tutorialForm) {
    tutorialForm.addEventListener("submit", function (event) {
      if (!window.fetch) return;
      event.preventDefault();
      post(tutorialForm.action, new FormData(tutorialForm)).then(function () {
        document.getElementById("tutorial").hidden = true;
        form.querySelector("button").focus();
      }).catch(function () { tutorialForm.submit(); });
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.repeat) { event.preventDefault(); return; } // a held key answers once
    var tag = event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    if (event.key.toLowerCase() === "u") {
      if (undoForm && !undoForm.hidden && window.fetch) { event.preventDefault(); undo(); }
      return;
    }
    var answer = keys[event.key.toLowerCase()];
    if (!answer) return;
    event.preventDefault();
    if (window.fetch) send(answer);
    else form.querySelector('button[value="' + answer + '"]').click();
  });

  // Swipe the picture right for yes, left for no (touch and pen; a mouse drags nothing).
  var start = null;
  image.addEventListener("pointerdown", function (event) {
    start = event.pointerType === "mouse" ? null : { x: event.clientX, y: event.clientY };
  });
  image.addEventListener("pointerup", function (event) {
    if (!start) return;
    var dx = event.clientX - start.x, dy = event.clientY - start.y;
    start = null;
    if (Math.abs(dx) < 60 || Math.abs(dy) > Math.abs(dx) / 2) return;
    if (window.fetch) send(dx > 0 ? "yes" : "no");
  });
})();
