/* duetrl book: small behaviours of the pages (no library, nothing loaded from elsewhere).
   1. A displayed equation wider than the column is scaled down to fit it (MathJax 3 does not
      break lines), never below 60 % of the text's size; it scrolls only past that.
   2. torch / tf tabs (docs/_ext/duetrl_tabs.py groups a tutorial's twin cells): a click shows
      one framework's cell, the choice holds on every tab set of the page and on later pages. */
(function () {
  "use strict";

  function fitEquations() {
    document.querySelectorAll('mjx-container[display="true"]').forEach(function (box) {
      box.style.fontSize = "";
      var wide = box.scrollWidth, room = box.clientWidth;
      if (room > 0 && wide > room + 1) {
        box.style.fontSize = Math.max(60, Math.floor(100 * room / wide)) + "%";
      }
    });
  }

  function whenTypeset(callback) {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(callback);
    } else {
      callback();
    }
  }

  var STORE = "duetrl-framework";

  function choose(framework) {
    document.querySelectorAll(".duetrl-tabs").forEach(function (set) {
      if (!set.querySelector('.duetrl-tab[data-framework="' + framework + '"]')) return;
      set.querySelectorAll(".duetrl-tab").forEach(function (tab) {
        var on = tab.getAttribute("data-framework") === framework;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
      });
      set.querySelectorAll(".duetrl-tab-panel").forEach(function (panel) {
        // myst-nb writes a cell's tag as a class: tag_torch, tag_tf
        panel.hidden = !panel.classList.contains("tag_" + framework);
      });
    });
    try { window.localStorage.setItem(STORE, framework); } catch (error) { /* private mode */ }
  }

  function setUpTabs() {
    var sets = document.querySelectorAll(".duetrl-tabs");
    if (!sets.length) return;
    sets.forEach(function (set) {
      set.querySelectorAll(".duetrl-tab").forEach(function (tab) {
        tab.addEventListener("click", function () { choose(tab.getAttribute("data-framework")); });
      });
    });
    var saved = null;
    try { saved = window.localStorage.getItem(STORE); } catch (error) { /* private mode */ }
    choose(saved === "tf" ? "tf" : "torch");  // one framework shown; PyTorch first
  }

  function start() {
    setUpTabs();
    whenTypeset(fitEquations);
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(fitEquations, 150);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
