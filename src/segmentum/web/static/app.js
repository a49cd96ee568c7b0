// Segmentum web app: the little the pages need beyond htmx and Alpine.
//  - charts: every <div class="chart" data-spec="ID"> is drawn by vega-embed from the
//    Vega-Lite spec in <script type="application/json" id="ID">, also after htmx swaps;
//  - the rule editor: a mirror behind the textarea underlines the error the server found
//    at its line and column (data-* attributes of #rule-problems), while the text is the
//    text that was checked;
//  - live counts (<div data-count-url=... data-form=...>): after each change (debounced) the
//    form is posted with a sequence number; a newer change aborts the request in flight
//    (AbortController) and the server drops or interrupts the stale count
//    (segmentum.web.previews), so a slow count never runs on after the rule changed.
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof window.vegaEmbed !== "function") return;
    root.querySelectorAll(".chart[data-spec]").forEach(function (el) {
      if (el.dataset.drawn === "1") return;
      var src = document.getElementById(el.dataset.spec);
      if (!src) return;
      el.dataset.drawn = "1";
      var spec = JSON.parse(src.textContent);
      window.vegaEmbed(el, spec, { actions: false, renderer: "svg" }).then(function (res) {
        var svg = el.querySelector("svg");
        if (svg && el.dataset.label) {
          svg.setAttribute("role", "img");
          svg.setAttribute("aria-label", el.dataset.label);
        }
        return res;
      }).catch(function (err) {
        el.textContent = "The chart could not be drawn (" + err.message + "); the table shows its data.";
      });
    });
  }

  // -- the rule editor's underline --------------------------------------------------------
  function escapeHtml(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // offset in code points of (line, column), both 1-based, in text
  function offsetOf(chars, line, column) {
    var l = 1, i = 0;
    while (i < chars.length && l < line) { if (chars[i] === "\n") l++; i++; }
    return Math.min(i + column - 1, chars.length);
  }

  function paintMirror(editor) {
    var area = editor.querySelector("textarea");
    var mirror = editor.querySelector(".mirror");
    if (!area || !mirror) return;
    var problems = document.getElementById(area.dataset.problems || "rule-problems");
    var text = area.value;
    var chars = Array.from(text);
    var html = null;
    if (problems && problems.dataset.line && problems.dataset.checked === text) {
      var start = offsetOf(chars, +problems.dataset.line, +problems.dataset.column);
      var endCol = +(problems.dataset.endColumn || 0);
      var end = endCol > 0 ? offsetOf(chars, +problems.dataset.line, endCol) : start + 1;
      if (end <= start) end = start + 1;
      var before = chars.slice(0, start).join("");
      var bad = chars.slice(start, end).join("") || " ";
      var after = chars.slice(end).join("");
      html = escapeHtml(before) + '<mark class="rule-error">' + escapeHtml(bad) + "</mark>" + escapeHtml(after);
      area.setAttribute("aria-invalid", "true");
    } else {
      area.removeAttribute("aria-invalid");
    }
    mirror.innerHTML = (html === null ? escapeHtml(text) : html) + "\n";
    mirror.scrollTop = area.scrollTop;
  }

  function paintEditors(root) {
    root.querySelectorAll(".editor").forEach(paintMirror);
  }

  document.addEventListener("input", function (ev) {
    var editor = ev.target.closest && ev.target.closest(".editor");
    if (editor) paintMirror(editor);
  });
  document.addEventListener("scroll", function (ev) {
    var editor = ev.target.closest && ev.target.closest(".editor");
    if (editor) editor.querySelector(".mirror").scrollTop = ev.target.scrollTop;
  }, true);

  // -- live counts ------------------------------------------------------------------------
  function applyFragment(panel, html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html;
    tpl.content.querySelectorAll("[hx-swap-oob]").forEach(function (oob) {
      oob.removeAttribute("hx-swap-oob");
      var old = oob.id && document.getElementById(oob.id);
      if (old) old.replaceWith(oob); else oob.remove();
    });
    panel.replaceChildren(tpl.content);
    panel.removeAttribute("aria-busy");
    paintEditors(document);
  }

  function countPanel(panel) {
    if (panel.dataset.live === "1") return;
    panel.dataset.live = "1";
    var form = document.getElementById(panel.dataset.form);
    var controller = null, timer = null, seq = 0;
    function send() {
      panel.dataset.state = "busy";
      if (controller) controller.abort();
      controller = new AbortController();
      var body = new URLSearchParams(new FormData(form));
      seq += 1;
      body.set("seq", String(seq));
      panel.setAttribute("aria-busy", "true");
      fetch(panel.dataset.countUrl, {
        method: "POST", body: body, signal: controller.signal,
        headers: { "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded" }
      }).then(function (r) { return r.status === 204 ? null : r.text(); })
        .then(function (html) {
          if (html !== null) applyFragment(panel, html);
          if (html !== null || !timer) panel.dataset.state = "idle";
        })
        .catch(function (err) {
          if (err.name === "AbortError") return;
          panel.textContent = "The count could not be made (" + err.message + "): change the rule to try again.";
          panel.dataset.state = "idle";
        });
      timer = null;
    }
    function later(ms) {
      panel.dataset.state = "pending";
      clearTimeout(timer);
      timer = setTimeout(send, ms);
    }
    form.addEventListener("input", function () { later(500); });
    form.addEventListener("change", function () { later(150); });
    document.body.addEventListener("rule-changed", function () { later(0); });
    send();
  }

  function ready(root) {
    drawCharts(root);
    paintEditors(root);
    root.querySelectorAll("[data-count-url]").forEach(countPanel);
  }

  document.addEventListener("DOMContentLoaded", function () { ready(document); });
  document.addEventListener("htmx:afterSettle", function () { ready(document); });
  document.addEventListener("htmx:oobAfterSwap", function () { paintEditors(document); });
  window.addEventListener("load", function () { drawCharts(document); });
})();
