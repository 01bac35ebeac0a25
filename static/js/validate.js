// Voting enhancements: keyboard answers, votes sent without a page reload,
// and the next picture preloaded. Without this script the form posts and the
// server redirects to the next task.
(function () {
  "use strict";
  var form = document.getElementById("vote-form");
  if (!form) return;
  var image = document.getElementById("task-image");
  var question = document.getElementById("question");
  var description = document.getElementById("description");
  var status = document.getElementById("vote-status");
  var preloaded = null; // the task after the current one, its image already fetched
  var busy = false;

  var keys = { y: "yes", arrowright: "yes", n: "no", arrowleft: "no", s: "skip", arrowdown: "skip" };

  function show(task) {
    form.action = task.vote_url;
    form.elements.ticket.value = task.ticket;
    question.textContent = task.question;
    document.title = task.question + " · ImageMonkey";
    description.textContent = task.description;
    image.width = task.width;
    image.height = task.height;
    image.alt = "The picture to judge. " + task.question;
    image.src = task.image_url;
    document.title = "Validate · ImageMonkey";
  }

  function preload(task) {
    preloaded = task;
    if (task) { var img = new Image(); img.src = task.image_url; }
  }

  function send(answer) {
    if (busy) return;
    busy = true;
    var data = new FormData(form);
    data.append("answer", answer);
    if (preloaded) {
      data.append("prefer", preloaded.pair);
      data.append("prefer_ticket", preloaded.ticket);
    }
    fetch(form.action, {
      method: "POST",
      body: data,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      busy = false;
      if (!result.ok) {
        status.textContent = result.body.error || "That did not work; please try again.";
        if (result.body.error) window.alert(result.body.error);
        return;
      }
      if (!result.body.next) { window.location.assign(result.body.done_url); return; }
      status.textContent = "Answer saved.";
      show(result.body.next);
      preload(result.body.then);
    }).catch(function () {
      busy = false;
      form.submit(); // fall back to a normal post
    });
  }

  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || !window.fetch) return;
    event.preventDefault();
    send(button.value);
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var answer = keys[event.key.toLowerCase()];
    if (!answer) return;
    event.preventDefault();
    if (window.fetch) send(answer);
    else form.querySelector('button[value="' + answer + '"]').click();
  });
})();
