// The drawing editor of /annotate: rectangles, polygons and ellipses drawn over
// the picture in an SVG whose user units are the stored master's pixels, so
// whatever the zoom and the size on the screen, what is drawn is what is sent.
// Pointer Events throughout: a mouse, a finger and a pen draw the same way.
// Without this script the page says what the editor needs and offers /validate.
(function () {
  "use strict";
  var root = document.getElementById("annotate");
  var dataNode = document.getElementById("annotate-data");
  if (!root || !dataNode || !window.fetch || !document.createElementNS) return;
  var data = JSON.parse(dataNode.textContent);
  var NS = "http://www.w3.org/2000/svg";
  var W = data.width, H = data.height; // the master's size: the SVG's user units
  var MAX_ZOOM = 16;
  var MIN_SIDE = 2; // master pixels: a smaller box is a click, not a shape

  var editor = document.getElementById("editor");
  var svg = document.getElementById("stage");
  var layers = {
    others: svg.querySelector(".others"),
    shapes: svg.querySelector(".shapes"),
    draft: svg.querySelector(".draft"),
    handles: svg.querySelector(".handles"),
  };
  var frame = document.getElementById("stage-frame");
  var status = document.getElementById("editor-status");
  var errorBox = document.getElementById("save-error");
  var shapeError = document.getElementById("shape-error");
  var saveButton = document.getElementById("save");
  var count = document.getElementById("shape-count");
  var zoomLabel = document.getElementById("zoom-level");
  var actions = root.querySelector(".annotate-actions");

  // --- shapes: kept as boxes (rect, ellipse) and point lists (polygon) -------------
  // A shape in the editor: {type: "rect"|"ellipse", x, y, w, h, angle} (its unturned
  // box, and the clockwise turn in degrees about the box's top-left corner, as the
  // original fabric.js editor kept them) or {type: "polygon", points: [{x, y}], angle: 0}.
  // fromApi and toApi are the only places that know the API's shape fields.
  function fromApi(shape) {
    var angle = Number(shape.angle) || 0;
    if (shape.type === "rect") {
      return { type: "rect", x: shape.left, y: shape.top, w: shape.width, h: shape.height, angle: angle };
    }
    if (shape.type === "ellipse") {
      return { type: "ellipse", x: shape.left, y: shape.top, w: 2 * shape.rx, h: 2 * shape.ry, angle: angle };
    }
    var points = shape.points.map(function (p) { return { x: p.x, y: p.y }; });
    if (angle) { // a turned polygon: turn its points about its box's corner, as the server does
      var box = bounds({ type: "polygon", points: points });
      points = points.map(function (p) { return rotate(p, box, angle); });
    }
    return { type: "polygon", angle: 0, points: points };
  }

  function round(value) { return Math.round(value * 100) / 100; }

  function toApi(shape) {
    if (shape.type === "rect") {
      return {
        type: "rect", left: round(shape.x), top: round(shape.y),
        width: round(shape.w), height: round(shape.h), angle: shape.angle,
      };
    }
    if (shape.type === "ellipse") {
      return {
        type: "ellipse", left: round(shape.x), top: round(shape.y),
        rx: round(shape.w / 2), ry: round(shape.h / 2), angle: shape.angle,
      };
    }
    return {
      type: "polygon", angle: shape.angle,
      points: shape.points.map(function (p) { return { x: round(p.x), y: round(p.y) }; }),
    };
  }

  function bounds(shape) {
    if (shape.type !== "polygon") return { x: shape.x, y: shape.y, w: shape.w, h: shape.h };
    var xs = shape.points.map(function (p) { return p.x; });
    var ys = shape.points.map(function (p) { return p.y; });
    var x = Math.min.apply(null, xs), y = Math.min.apply(null, ys);
    return { x: x, y: y, w: Math.max.apply(null, xs) - x, h: Math.max.apply(null, ys) - y };
  }

  function pivot(shape) { return { x: shape.x, y: shape.y }; } // what a box turns about

  function rotate(point, about, degrees) {
    var a = degrees * Math.PI / 180, c = Math.cos(a), s = Math.sin(a);
    var dx = point.x - about.x, dy = point.y - about.y;
    return { x: about.x + dx * c - dy * s, y: about.y + dx * s + dy * c };
  }

  function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }

  function element(name, attributes, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function drawShape(shape, parent, attributes) {
    var node;
    if (shape.type === "rect") {
      node = element("rect", { x: shape.x, y: shape.y, width: shape.w, height: shape.h }, parent);
    } else if (shape.type === "ellipse") {
      node = element("ellipse", {
        cx: shape.x + shape.w / 2, cy: shape.y + shape.h / 2, rx: shape.w / 2, ry: shape.h / 2,
      }, parent);
    } else {
      node = element("polygon", {
        points: shape.points.map(function (p) { return p.x + "," + p.y; }).join(" "),
      }, parent);
    }
    if (shape.angle) {
      node.setAttribute("transform", "rotate(" + shape.angle + " " + shape.x + " " + shape.y + ")");
    }
    Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    return node;
  }

  // --- state -----------------------------------------------------------------------
  var shapes = (data.shapes || []).map(fromApi);
  var selected = -1;
  var invalid = -1; // the shape the server refused, until it changes
  var tool = "rect";
  var polygon = null; // the polygon being drawn: its points so far
  var hover = null; // where the pointer is, for the polygon's next edge
  var history = [];
  var view = { x: 0, y: 0, w: W, h: H };
  var action = null; // what the pointer that went down is doing
  var pointers = {}; // pointers down on the stage, for pinching
  var pinch = null;
  var spaceHeld = false;
  var dirty = false;

  function remember() {
    history.push(JSON.stringify(shapes));
    if (history.length > 100) history.shift();
  }

  function changed() {
    dirty = true;
    invalid = -1;
    hideShapeError();
  }

  // --- view: zoom and pan by the SVG's viewBox ----------------------------------------
  function scale() { return svg.clientWidth / view.w || 1; } // screen px per master px

  function fit() {
    // As large as the column allows, and short enough that the picture and the Save bar
    // fit on the screen below the page's head (never less than half the screen).
    var width = frame.clientWidth;
    var top = frame.getBoundingClientRect().top + window.scrollY;
    var below = actions.offsetHeight + 16;
    var tallest = Math.max(200, window.innerHeight * 0.55, window.innerHeight - top - below);
    var s = Math.min(width / W, tallest / H);
    svg.style.width = Math.floor(W * s) + "px";
    svg.style.height = Math.floor(H * s) + "px";
    render();
  }

  function setView(x, y, w) {
    w = clamp(w, W / MAX_ZOOM, W);
    var h = w * H / W;
    view = { x: clamp(x, 0, W - w), y: clamp(y, 0, H - h), w: w, h: h };
    svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" "));
    zoomLabel.textContent = Math.round(W / view.w * 100) + " %";
    render();
  }

  function zoomAt(factor, at) {
    at = at || { x: view.x + view.w / 2, y: view.y + view.h / 2 };
    var w = clamp(view.w / factor, W / MAX_ZOOM, W);
    var k = w / view.w;
    setView(at.x - (at.x - view.x) * k, at.y - (at.y - view.y) * k, w);
  }

  function panBy(dx, dy) { setView(view.x - dx, view.y - dy, view.w); }

  function toImage(event) {
    var point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    var p = point.matrixTransform(svg.getScreenCTM().inverse());
    return { x: p.x, y: p.y };
  }

  function inside(p) { return { x: clamp(p.x, 0, W), y: clamp(p.y, 0, H) }; }

  // --- drawing the state ----------------------------------------------------------------
  var coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;

  function handleRadius() { return (coarse ? 11 : 6) / scale(); }

  function handlesOf(shape) {
    if (shape.type === "polygon") {
      return shape.points.map(function (p, i) { return { name: "point", index: i, x: p.x, y: p.y }; });
    }
    var c = pivot(shape);
    var xs = { w: shape.x, m: shape.x + shape.w / 2, e: shape.x + shape.w };
    var ys = { n: shape.y, m: shape.y + shape.h / 2, s: shape.y + shape.h };
    return ["nw", "n", "ne", "e", "se", "s", "sw", "w"].map(function (name) {
      var x = name.indexOf("w") >= 0 ? xs.w : name.indexOf("e") >= 0 ? xs.e : xs.m;
      var y = name.indexOf("n") >= 0 ? ys.n : name.indexOf("s") >= 0 ? ys.s : ys.m;
      var p = rotate({ x: x, y: y }, c, shape.angle);
      return { name: name, x: p.x, y: p.y };
    });
  }

  function render() {
    layers.shapes.textContent = "";
    layers.handles.textContent = "";
    layers.draft.textContent = "";
    shapes.forEach(function (shape, index) {
      var classes = "shape" + (index === selected ? " selected" : "") + (index === invalid ? " invalid" : "");
      drawShape(shape, layers.shapes, { class: classes, "data-index": index });
    });
    var r = handleRadius();
    if (selected >= 0 && shapes[selected]) {
      handlesOf(shapes[selected]).forEach(function (h) {
        element("circle", {
          cx: h.x, cy: h.y, r: r, class: "handle handle-" + h.name,
          "data-handle": h.name,
        }, layers.handles);
      });
    }
    if (polygon) {
      var points = polygon.slice();
      if (hover) points.push(hover);
      element("polyline", {
        points: points.map(function (p) { return p.x + "," + p.y; }).join(" "), class: "draft-line",
      }, layers.draft);
      polygon.forEach(function (p, i) {
        element("circle", {
          cx: p.x, cy: p.y, r: i === 0 && polygon.length >= 3 ? r * 1.5 : r,
          class: "handle" + (i === 0 ? " first-point" : ""),
        }, layers.draft);
      });
    }
    count.textContent = shapes.length === 1 ? "1 shape" : shapes.length + " shapes";
    saveButton.disabled = shapes.length === 0 || saving;
    placeShapeError();
  }

  function showOthers() {
    (data.others || []).forEach(function (other) {
      var group = element("g", { class: "other" }, layers.others);
      element("title", {}, group).textContent = other.label;
      other.shapes.forEach(function (shape) { drawShape(fromApi(shape), group); });
    });
  }

  // --- tools ----------------------------------------------------------------------------
  var toolButtons = Array.prototype.slice.call(document.querySelectorAll("[data-tool]"));
  var hints = {
    rect: "Drag across the object to draw a rectangle. Drag its handles to resize it, or inside it to move it (Esc first to draw another inside it).",
    ellipse: "Drag across the object to draw an ellipse inside that box. Drag its handles to change it.",
    polygon: "Click (or tap) each corner of the outline; click the first point to close it. Backspace takes the last point back.",
    select: "Click a shape to select it, drag it to move it, drag its handles to change it. Drag the picture to move around when zoomed in.",
  };

  function setTool(name) {
    if (polygon && name !== "polygon") finishPolygon(true); // closed if it can be, else dropped
    tool = name;
    svg.setAttribute("data-tool", name);
    toolButtons.forEach(function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-tool") === name ? "true" : "false");
    });
    say(hints[name]);
  }

  function say(text) { status.textContent = text; }

  function finishPolygon(close) {
    var points = polygon;
    polygon = null;
    hover = null;
    if (close && points && points.length >= 3) {
      remember();
      shapes.push({ type: "polygon", points: points, angle: 0 });
      selected = shapes.length - 1;
      changed();
      say("Polygon closed with " + points.length + " points. Start the next one, or save.");
    }
    render();
  }

  function deleteSelected() {
    if (selected < 0) return;
    remember();
    shapes.splice(selected, 1);
    selected = -1;
    changed();
    say("Shape deleted.");
    render();
  }

  function undo() {
    if (polygon) {
      polygon.pop();
      if (!polygon.length) polygon = null;
      render();
      return;
    }
    if (!history.length) return;
    shapes = JSON.parse(history.pop());
    selected = -1;
    changed();
    say("Undone.");
    render();
  }

  // --- pointer input ----------------------------------------------------------------------
  // Hits are found from where the pointer is, not from the event's target: a finger
  // covers more than the circle it means, and a pointer captured by the stage reports
  // the stage as its target.
  function hitShape(event) {
    var nodes = document.elementsFromPoint(event.clientX, event.clientY);
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].hasAttribute("data-index")) return Number(nodes[i].getAttribute("data-index"));
    }
    return -1;
  }

  function near(a, b, reach) { return Math.hypot(a.x - b.x, a.y - b.y) <= reach; }

  function hitHandle(p) {
    if (selected < 0 || !shapes[selected]) return null;
    var reach = handleRadius() * 1.6, found = null;
    handlesOf(shapes[selected]).forEach(function (h) { if (!found && near(p, h, reach)) found = h; });
    return found;
  }

  function resizeBox(shape, handle, p) {
    // Work in the shape's own frame, keep the opposite side where it is on the picture.
    var c = pivot(shape);
    var local = rotate(p, c, -shape.angle);
    var left = shape.x, top = shape.y, right = shape.x + shape.w, bottom = shape.y + shape.h;
    var anchor = {
      x: handle.indexOf("w") >= 0 ? right : handle.indexOf("e") >= 0 ? left : left + shape.w / 2,
      y: handle.indexOf("n") >= 0 ? bottom : handle.indexOf("s") >= 0 ? top : top + shape.h / 2,
    };
    var anchorBefore = rotate(anchor, c, shape.angle);
    if (handle.indexOf("w") >= 0) left = local.x;
    if (handle.indexOf("e") >= 0) right = local.x;
    if (handle.indexOf("n") >= 0) top = local.y;
    if (handle.indexOf("s") >= 0) bottom = local.y;
    shape.x = Math.min(left, right);
    shape.y = Math.min(top, bottom);
    shape.w = Math.abs(right - left);
    shape.h = Math.abs(bottom - top);
    if (shape.angle) {
      var after = {
        x: handle.indexOf("w") >= 0 ? shape.x + shape.w : handle.indexOf("e") >= 0 ? shape.x : shape.x + shape.w / 2,
        y: handle.indexOf("n") >= 0 ? shape.y + shape.h : handle.indexOf("s") >= 0 ? shape.y : shape.y + shape.h / 2,
      };
      var moved = rotate(after, pivot(shape), shape.angle);
      shape.x += anchorBefore.x - moved.x;
      shape.y += anchorBefore.y - moved.y;
    }
  }

  function moveShape(shape, from, dx, dy) {
    if (shape.type === "polygon") {
      var b = bounds(from);
      dx = clamp(dx, -b.x, W - b.x - b.w);
      dy = clamp(dy, -b.y, H - b.y - b.h);
      shape.points = from.points.map(function (p) { return { x: p.x + dx, y: p.y + dy }; });
    } else {
      shape.x = clamp(from.x + dx, Math.min(0, from.x), Math.max(W - from.w, from.x));
      shape.y = clamp(from.y + dy, Math.min(0, from.y), Math.max(H - from.h, from.y));
    }
  }

  function boxFrom(start, p) {
    var a = inside(start), b = inside(p);
    return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
  }

  svg.addEventListener("pointerdown", function (event) {
    if (event.pointerType === "mouse" && event.button !== 0 && event.button !== 1) return;
    event.preventDefault();
    svg.focus({ preventScroll: true });
    try { svg.setPointerCapture(event.pointerId); } catch (error) { /* a pointer already gone */ }
    pointers[event.pointerId] = { x: event.clientX, y: event.clientY };
    var ids = Object.keys(pointers);
    if (ids.length === 2) { // a second finger: pinch and pan, and drop what the first began
      if (action && action.kind === "draw") shapes.pop();
      if (action && action.before) { shapes = JSON.parse(action.before); history.pop(); }
      action = null;
      pinch = pinchState();
      render();
      return;
    }
    if (ids.length > 2) return;
    var p = toImage(event);
    var start = { x: event.clientX, y: event.clientY, p: p };
    if (event.button === 1 || spaceHeld) { action = { kind: "pan", start: start, view: view }; return; }
    if (polygon) {
      var first = polygon.length >= 3 && near(p, polygon[0], handleRadius() * 1.8);
      action = { kind: "polygon", start: start, first: first };
      return;
    }
    var handle = hitHandle(p);
    if (handle) {
      remember();
      action = { kind: "handle", handle: handle.name, point: handle.index, start: start, before: history[history.length - 1] };
      return;
    }
    var hit = hitShape(event);
    // The select tool moves any shape; a drawing tool moves the selected one (a polygon
    // always starts a new outline: its first point may well lie inside another shape).
    if (hit >= 0 && (tool === "select" || (hit === selected && tool !== "polygon"))) {
      selected = hit;
      remember();
      action = { kind: "move", start: start, from: JSON.parse(JSON.stringify(shapes[hit])), before: history[history.length - 1] };
      render();
      return;
    }
    if (tool === "rect" || tool === "ellipse") {
      shapes.push({ type: tool, x: p.x, y: p.y, w: 0, h: 0, angle: 0 });
      action = { kind: "draw", start: start, hit: hit };
      selected = shapes.length - 1;
      render();
      return;
    }
    if (tool === "polygon") { action = { kind: "polygon", start: start }; return; }
    selected = -1; // the select tool on the picture: deselect, and drag to pan
    action = { kind: "pan", start: start, view: view };
    render();
  });

  svg.addEventListener("pointermove", function (event) {
    if (pointers[event.pointerId]) pointers[event.pointerId] = { x: event.clientX, y: event.clientY };
    if (pinch) { pinchMove(); return; }
    var p = toImage(event);
    if (polygon && !action) { hover = inside(p); render(); return; }
    if (!action) return;
    var moved = Math.hypot(event.clientX - action.start.x, event.clientY - action.start.y);
    if (action.kind === "pan" || (action.kind === "polygon" && moved > 8)) {
      if (action.kind === "polygon") action = { kind: "pan", start: action.start, view: view };
      var s = scale();
      setView(action.view.x - (event.clientX - action.start.x) / s,
        action.view.y - (event.clientY - action.start.y) / s, action.view.w);
      return;
    }
    if (action.kind === "draw") {
      var box = boxFrom(action.start.p, p);
      Object.assign(shapes[shapes.length - 1], box);
    } else if (action.kind === "move") {
      moveShape(shapes[selected], action.from, p.x - action.start.p.x, p.y - action.start.p.y);
    } else if (action.kind === "handle") {
      var shape = shapes[selected];
      if (shape.type === "polygon") shape.points[Number(action.point)] = inside(p);
      else resizeBox(shape, action.handle, inside(p));
    }
    render();
  });

  function pointerEnd(event) {
    delete pointers[event.pointerId];
    if (pinch) {
      if (!Object.keys(pointers).length) pinch = null;
      return;
    }
    var done = action;
    action = null;
    if (!done || event.type === "pointercancel") {
      if (done && done.kind === "draw") { shapes.pop(); selected = -1; render(); }
      return;
    }
    var p = toImage(event);
    if (done.kind === "draw") {
      var shape = shapes[shapes.length - 1];
      if (shape.w < MIN_SIDE || shape.h < MIN_SIDE) { // a click, not a drag: select what is there
        shapes.pop();
        selected = done.hit;
        if (done.hit >= 0) say("Shape selected: drag it to move it, or press Delete.");
      } else {
        shapes.pop();
        remember();
        shapes.push(shape);
        changed();
        say((shape.type === "rect" ? "Rectangle" : "Ellipse") + " drawn. Drag its handles to adjust it.");
      }
    } else if (done.kind === "polygon") {
      if (done.first && polygon && polygon.length >= 3) { finishPolygon(true); return; }
      polygon = polygon || [];
      polygon.push(inside(p));
      selected = -1;
      say(polygon.length < 3 ? "Point " + polygon.length + " placed; keep going."
        : "Point " + polygon.length + " placed. Click the first point (or press Enter) to close the outline.");
    } else if (done.kind === "move" || done.kind === "handle") {
      if (JSON.stringify(shapes) !== done.before) changed();
      else {
        history.pop(); // nothing moved: a click, perhaps the second of a double click
        if (doubleClick(event) && shapes[selected] && shapes[selected].type === "polygon") {
          editPoints(shapes[selected], done.kind === "handle" ? Number(done.point) : -1, p);
        }
      }
    }
    render();
  }
  svg.addEventListener("pointerup", pointerEnd);
  svg.addEventListener("pointercancel", pointerEnd);
  svg.addEventListener("pointerleave", function () { if (polygon && !action) { hover = null; render(); } });

  // A double click (or double tap) on a polygon's point takes the point away; on the
  // polygon, it adds a point to the nearest edge.
  var lastClick = null;
  function doubleClick(event) {
    var now = Date.now(), previous = lastClick;
    lastClick = { t: now, x: event.clientX, y: event.clientY };
    if (!previous || now - previous.t > 400) return false;
    lastClick = null;
    return Math.hypot(event.clientX - previous.x, event.clientY - previous.y) < 12;
  }

  function editPoints(shape, index, p) {
    remember();
    if (index >= 0) {
      if (shape.points.length <= 3) { history.pop(); say("A polygon keeps at least three points."); return; }
      shape.points.splice(index, 1);
      say("Point taken away.");
    } else {
      var best = 0, bestDistance = Infinity;
      shape.points.forEach(function (a, i) {
        var b = shape.points[(i + 1) % shape.points.length];
        var dx = b.x - a.x, dy = b.y - a.y, length = dx * dx + dy * dy || 1;
        var t = clamp(((p.x - a.x) * dx + (p.y - a.y) * dy) / length, 0, 1);
        var d = Math.hypot(a.x + t * dx - p.x, a.y + t * dy - p.y);
        if (d < bestDistance) { bestDistance = d; best = i; }
      });
      shape.points.splice(best + 1, 0, inside(p));
      say("Point added; drag it into place.");
    }
    changed();
  }

  function pinchState() {
    var ids = Object.keys(pointers), a = pointers[ids[0]], b = pointers[ids[1]];
    var rect = svg.getBoundingClientRect();
    var mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    return {
      distance: Math.hypot(a.x - b.x, a.y - b.y) || 1, mid: mid, view: view,
      at: { x: view.x + (mid.x - rect.left) / scale(), y: view.y + (mid.y - rect.top) / scale() },
    };
  }

  function pinchMove() {
    var ids = Object.keys(pointers);
    if (ids.length < 2) return;
    var a = pointers[ids[0]], b = pointers[ids[1]];
    var factor = Math.hypot(a.x - b.x, a.y - b.y) / pinch.distance;
    var w = clamp(pinch.view.w / factor, W / MAX_ZOOM, W);
    var rect = svg.getBoundingClientRect();
    var mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    var s = svg.clientWidth / w;
    setView(pinch.at.x - (mid.x - rect.left) / s, pinch.at.y - (mid.y - rect.top) / s, w);
  }

  svg.addEventListener("contextmenu", function (event) { event.preventDefault(); }); // a long press

  svg.addEventListener("wheel", function (event) {
    event.preventDefault();
    zoomAt(event.deltaY < 0 ? 1.25 : 0.8, toImage(event));
  }, { passive: false });

  // --- keyboard -----------------------------------------------------------------------------
  var toolKeys = { r: "rect", p: "polygon", e: "ellipse", v: "select" };
  document.addEventListener("keydown", function (event) {
    var tag = event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var key = event.key;
    if (key === " " && event.target === svg) { spaceHeld = true; event.preventDefault(); return; }
    if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "z") { event.preventDefault(); undo(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.repeat && !/^Arrow/.test(key)) { event.preventDefault(); return; }
    var handled = true;
    if (toolKeys[key.toLowerCase()]) setTool(toolKeys[key.toLowerCase()]);
    else if (key === "Backspace") { if (polygon) undo(); else deleteSelected(); }
    else if (key === "Delete") deleteSelected();
    else if (key === "+" || key === "=") zoomAt(1.5);
    else if (key === "-" || key === "_") zoomAt(1 / 1.5);
    else if (key === "0") setView(0, 0, W);
    else if (key === "Enter" && polygon) finishPolygon(true);
    else if (key === "Escape") {
      if (polygon) { polygon = null; hover = null; say("Polygon dropped."); }
      selected = -1;
      render();
    } else if (/^Arrow/.test(key) && selected < 0 && event.target === svg) { // move the view
      var dx = { ArrowLeft: 1, ArrowRight: -1 }[key] || 0, dy = { ArrowUp: 1, ArrowDown: -1 }[key] || 0;
      panBy(dx * view.w / 10, dy * view.h / 10);
    } else if (/^Arrow/.test(key) && selected >= 0 && event.target === svg) {
      var step = 1 / scale() * (event.shiftKey ? 10 : 1);
      var d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[key];
      if (!event.repeat) remember();
      moveShape(shapes[selected], JSON.parse(JSON.stringify(shapes[selected])), d[0], d[1]);
      changed();
      render();
    } else handled = false;
    if (handled) event.preventDefault();
  });
  document.addEventListener("keyup", function (event) { if (event.key === " ") spaceHeld = false; });

  toolButtons.forEach(function (button) {
    button.addEventListener("click", function () { setTool(button.getAttribute("data-tool")); });
  });
  document.getElementById("zoom-in").addEventListener("click", function () { zoomAt(1.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoomAt(1 / 1.5); });
  document.getElementById("zoom-fit").addEventListener("click", function () { setView(0, 0, W); });
  document.getElementById("delete-shape").addEventListener("click", deleteSelected);
  document.getElementById("undo").addEventListener("click", undo);
  var othersToggle = document.getElementById("show-others");
  if (othersToggle) {
    othersToggle.addEventListener("change", function () { layers.others.hidden = !othersToggle.checked; });
  }

  // --- saving --------------------------------------------------------------------------------
  var saving = false;
  var csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;

  var names = { rect: "rectangle", ellipse: "ellipse", polygon: "polygon" };

  function hideShapeError() { shapeError.hidden = true; }

  function placeShapeError() {
    if (invalid < 0 || !shapes[invalid] || shapeError.hidden) return;
    var b = bounds(shapes[invalid]);
    var s = scale();
    var left = clamp((b.x - view.x) * s, 0, Math.max(0, svg.clientWidth - 200));
    var top = clamp((b.y + b.h - view.y) * s + 6, 0, Math.max(0, svg.clientHeight - 40));
    shapeError.style.left = left + "px";
    shapeError.style.top = top + "px";
  }

  function refused(body, statusCode) {
    var message = (body && body.error) || "The outline was not saved (error " + statusCode + "). Please try again.";
    // The server names a refused shape by its place in the list: "shape 2: the polygon
    // crosses itself (edges 1 and 4)". That shape is marked and the reason put beside it.
    var index = body && typeof body.shape === "number" ? body.shape : -1;
    var named = /^shape (\d+): */.exec(message);
    if (named) {
      index = Number(named[1]);
      message = message.slice(named[0].length);
    }
    if (index >= 0 && shapes[index]) {
      invalid = index;
      selected = index;
      shapeError.textContent = "This " + names[shapes[index].type] + " was not saved: " + message.replace(/\.$/, "") + ".";
      shapeError.hidden = false;
      errorBox.hidden = true;
    } else {
      errorBox.textContent = message;
      errorBox.hidden = false;
    }
    say("Not saved: " + message);
    render();
  }

  function send(url, method, body) {
    return fetch(url, {
      method: method,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrf },
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        return { ok: response.ok, status: response.status, body: json };
      });
    });
  }

  function failedConnection() {
    saving = false;
    errorBox.textContent = "Nothing was saved: the connection failed. Press Save again once you are back online.";
    errorBox.hidden = false;
    render();
  }

  saveButton.addEventListener("click", function () {
    if (polygon) finishPolygon(true);
    if (!shapes.length || saving) return;
    saving = true;
    errorBox.hidden = true;
    hideShapeError();
    say("Saving…");
    render();
    var body = { annotations: shapes.map(toApi), ticket: data.ticket };
    send(data.save.url, data.save.method, body).then(function (result) {
      saving = false;
      if (!result.ok) { refused(result.body, result.status); return; }
      dirty = false;
      say("Saved. Loading the next picture…");
      window.location.assign(data.next_url);
    }).catch(failedConnection);
  });

  var notAnnotatable = document.getElementById("not-annotatable");
  if (notAnnotatable) {
    notAnnotatable.addEventListener("click", function () {
      if (saving) return;
      saving = true;
      send(data.not_annotatable_url, "POST", { ticket: data.ticket }).then(function (result) {
        saving = false;
        if (!result.ok) { refused(result.body, result.status); return; }
        dirty = false;
        window.location.assign(data.next_url);
      }).catch(failedConnection);
    });
  }

  window.addEventListener("beforeunload", function (event) {
    if (dirty && shapes.length) { event.preventDefault(); event.returnValue = ""; }
  });
  document.getElementById("skip").addEventListener("click", function () { dirty = false; });

  // --- start -------------------------------------------------------------------------------
  editor.hidden = false;
  document.getElementById("needs-javascript").hidden = true;
  showOthers();
  setTool(shapes.length ? "select" : "rect");
  window.addEventListener("resize", fit);
  fit();
  setView(0, 0, W);
  root.setAttribute("data-ready", "");
})();
