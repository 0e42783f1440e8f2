/* Keyboard shortcuts for the review pages (no inline scripts: the pages' CSP forbids them).
   Item page: a approve, r reject (focus the reason, Enter submits), j/k next/previous, u queue.
   Queue: j/k move the selection, Enter or o opens it. Everywhere: ? help, Esc leaves a field. */
(function () {
  "use strict";
  var page = document.body.getAttribute("data-page");

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  function follow(id) {
    var a = document.getElementById(id);
    if (a) { window.location.href = a.href; return true; }
    return false;
  }

  // queue: a selectable list of rows
  var rows = page === "queue" ? Array.prototype.slice.call(document.querySelectorAll("tr[data-href]")) : [];
  var sel = -1;
  function select(i) {
    if (!rows.length) return;
    sel = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, k) { r.classList.toggle("sel", k === sel); });
    rows[sel].scrollIntoView({block: "nearest"});
  }
  rows.forEach(function (r, k) {
    r.addEventListener("click", function (e) {
      if (e.target.tagName !== "A") { window.location.href = r.getAttribute("data-href"); }
    });
  });
  if (rows.length) select(0);

  // item: hovering a reason lights up its marks, and the other way round
  function light(ids, on) {
    ids.split(" ").forEach(function (id) {
      if (!id) return;
      document.querySelectorAll('mark[data-r~="' + id + '"]').forEach(function (m) { m.classList.toggle("hot", on); });
      var li = document.getElementById(id);
      if (li) li.classList.toggle("hot", on);
    });
  }
  document.querySelectorAll("[data-r]").forEach(function (el) {
    el.addEventListener("mouseenter", function () { light(el.getAttribute("data-r"), true); });
    el.addEventListener("mouseleave", function () { light(el.getAttribute("data-r"), false); });
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    var k = e.key;
    if (k === "?") {
      var h = document.getElementById("help");
      if (h) { h.hidden = !h.hidden; e.preventDefault(); }
      return;
    }
    if (page === "item") {
      if (k === "a") {
        var f = document.getElementById("approve-form");
        if (f) { e.preventDefault(); (f.requestSubmit ? f.requestSubmit() : f.submit()); }
      } else if (k === "r") {
        var r = document.getElementById("reject-reason");
        if (r) { e.preventDefault(); r.focus(); }
      } else if (k === "j") {
        if (follow("next-link")) e.preventDefault();
      } else if (k === "k") {
        if (follow("prev-link")) e.preventDefault();
      } else if (k === "u") {
        if (follow("queue-link")) e.preventDefault();
      }
    } else if (page === "queue") {
      if (k === "j") { select(sel + 1); e.preventDefault(); }
      else if (k === "k") { select(sel - 1); e.preventDefault(); }
      else if ((k === "Enter" || k === "o") && sel >= 0 && rows[sel]) {
        e.preventDefault();
        window.location.href = rows[sel].getAttribute("data-href");
      }
    }
  });
})();
