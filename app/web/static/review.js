/* Keyboard shortcuts and small helpers for the review pages (no inline scripts: the pages' CSP
   forbids them). Everything here is a shortcut: the pages work without it, and every rule it
   helps with (a reason to reject, the confirmation for flagged items) is checked by the server.
   Item page: a approve (a flagged item: a first focuses its confirmation box; Space ticks it, a approves),
   r reject (focus the reason, Enter submits), j/k next/previous (skipping items other reviewers
   hold), u queue. Queue: j/k move the selection (skipping rows other reviewers hold), Enter or o
   opens it, x selects it for a bulk decision, / searches. Everywhere: ? help, Esc leaves a field.
   The script has no words of its own: the page passes them in its language as data-* attributes. */
(function () {
  "use strict";
  var page = document.body.getAttribute("data-page");

  function typing(el) {
    if (!el) return false;
    if (el.isContentEditable || /^(TEXTAREA|SELECT)$/.test(el.tagName)) return true;
    if (el.tagName !== "INPUT") return false;
    return !/^(checkbox|radio|button|submit|reset)$/i.test(el.type || "text");
  }
  function follow(id) {
    var a = document.getElementById(id);
    if (a) { window.location.href = a.href; return true; }
    return false;
  }
  function submit(f) { if (f.requestSubmit) { f.requestSubmit(); } else { f.submit(); } }
  // the page's words come from the page (data-* attributes written in its language, see
  // app/web/i18n.py); the English ones here are only a fallback
  function text(el, key, fallback) { var v = el.getAttribute("data-" + key); return v === null ? fallback : v; }
  function fill(pattern, values) {
    return pattern.replace(/\{(\w+)\}/g, function (m, k) { return Object.prototype.hasOwnProperty.call(values, k) ? String(values[k]) : m; });
  }

  // queue: a selectable list of rows
  var rows = page === "queue" ? Array.prototype.slice.call(document.querySelectorAll("tr[data-href]")) : [];
  var sel = -1;
  function free(r) { return r.getAttribute("data-claimed") !== "other"; }
  function select(i) {
    if (!rows.length) return;
    sel = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, k) { r.classList.toggle("sel", k === sel); });
    rows[sel].scrollIntoView({block: "nearest"});
  }
  function step(dir) {  // the next row in that direction that nobody else holds
    for (var i = sel + dir; i >= 0 && i < rows.length; i += dir) {
      if (free(rows[i])) { select(i); return; }
    }
  }
  rows.forEach(function (r) {
    r.addEventListener("click", function (e) {
      var t = e.target;
      if (t.tagName === "A" || t.tagName === "INPUT" || t.tagName === "LABEL" || (t.closest && t.closest(".sel-col"))) return;
      window.location.href = r.getAttribute("data-href");
    });
  });
  if (rows.length) {
    var first = 0;
    while (first < rows.length - 1 && !free(rows[first])) first++;
    select(first);
  }

  // queue: bulk selection
  var bulk = document.getElementById("bulk-form");
  var boxes = bulk ? Array.prototype.slice.call(bulk.querySelectorAll("input[name=sel]")) : [];
  var all = document.getElementById("select-all");
  var confirmBox = document.getElementById("bulk-confirm");
  var confirmLabel = document.getElementById("bulk-confirm-label");
  function picked() { return boxes.filter(function (b) { return b.checked; }); }
  function pickedFlagged() {
    return picked().filter(function (b) { return b.closest("tr").getAttribute("data-flagged") === "1"; });
  }
  function refresh() {
    var p = picked(), items = 0;
    p.forEach(function (b) { items += parseInt(b.closest("tr").getAttribute("data-count") || "1", 10); });
    boxes.forEach(function (b) { b.closest("tr").classList.toggle("picked", b.checked); });
    var count = document.getElementById("selected-count");
    if (count) {
      var f = pickedFlagged().length;
      count.textContent = p.length ? fill(text(count, f ? "pattern" : "pattern-clean", f ? "{rows} ({items}), {flagged}" : "{rows} ({items})"), {
        rows: fill(p.length === 1 ? text(count, "rows-one", "{n} row selected") : text(count, "rows-many", "{n} rows selected"), {n: p.length}),
        items: fill(items === 1 ? text(count, "items-one", "{n} item") : text(count, "items-many", "{n} items"), {n: items}),
        flagged: fill(text(count, "flagged", "{n} flagged"), {n: f})
      }) : text(count, "none", "none selected");
    }
    if (confirmLabel) confirmLabel.classList.toggle("needed", pickedFlagged().length > 0 && !(confirmBox && confirmBox.checked));
    if (all) all.checked = boxes.length > 0 && p.length === boxes.length;
  }
  boxes.forEach(function (b) { b.addEventListener("change", refresh); });
  if (all) all.addEventListener("change", function () {
    boxes.forEach(function (b) { b.checked = all.checked; });
    refresh();
  });
  if (confirmBox) confirmBox.addEventListener("change", refresh);
  if (bulk) {
    bulk.addEventListener("submit", function (e) {
      var btn = e.submitter, reason = document.getElementById("bulk-reason");
      if (!btn) return;
      if (btn.value === "reject" && reason && !reason.value.trim()) {
        e.preventDefault();
        reason.focus();
      } else if (btn.value === "approve" && pickedFlagged().length && confirmBox && !confirmBox.checked) {
        e.preventDefault();
        if (confirmLabel) confirmLabel.classList.add("needed");
        confirmBox.focus();
      }
    });
    refresh();
  }

  // item: a flagged item's approval needs its confirmation ticked
  var approveForm = document.getElementById("approve-form");
  var approveConfirm = document.getElementById("approve-confirm");

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
        if (!approveForm) return;
        var btn = approveForm.querySelector("button[type=submit]");
        if (btn && btn.disabled) return;
        e.preventDefault();
        if (approveConfirm && !approveConfirm.checked) {
          approveConfirm.focus();
          var lab = document.getElementById("approve-confirm-label");
          if (lab) lab.classList.add("needed");
          return;  // Space ticks the focused box, then a approves
        }
        submit(approveForm);
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
      if (k === "j") { step(1); e.preventDefault(); }
      else if (k === "k") { step(-1); e.preventDefault(); }
      else if (k === "x" && sel >= 0 && rows[sel]) {
        var box = rows[sel].querySelector("input[name=sel]");
        if (box) { box.checked = !box.checked; refresh(); e.preventDefault(); }
      } else if (k === "/") {
        var s = document.getElementById("search");
        if (s) { s.focus(); s.select(); e.preventDefault(); }
      } else if ((k === "Enter" || k === "o") && sel >= 0 && rows[sel]) {
        e.preventDefault();
        window.location.href = rows[sel].getAttribute("data-href");
      }
    }
  });
})();
