/* duetrl book: small behaviours of the pages (no library, nothing loaded from elsewhere).
   1. A displayed equation wider than the column is scaled down to fit it (MathJax 3 does not
      break lines), never below 60 % of the text's size; it scrolls only past that.
   2. torch / tf tabs (docs/_ext/duetrl_book.py groups a tutorial's twin cells): a click shows
      one framework's cell, the choice holds on every tab set of the page and on later pages.
   3. The search page's snippets are the result page's prose: the article's text without the
      theme's buttons ("System Settings Light Dark"), the equations' raw TeX (shown as "…")
      and the cells' printed output; Sphinx's own htmlToText takes all of [role=main]. */
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

  // What a snippet leaves out (the index leaves out the same: docs/_ext/duetrl_book.py).
  var NOT_PROSE = [".headerlink", "script", "style", "button", ".bd-header-article",
                   ".duetrl-tab-bar", ".cell_output", ".no-search", ".prev-next-area",
                   ".bd-footer-article", "footer"];

  function proseText(htmlString, anchor) {
    var page = new DOMParser().parseFromString(htmlString, "text/html");
    var article = page.querySelector("article.bd-article") || page.querySelector('[role="main"]');
    if (!article) return "";
    // an equation is TeX until MathJax typesets it: one "…" stands for it in a snippet
    article.querySelectorAll(".math").forEach(function (maths) {
      maths.replaceWith(page.createTextNode(" … "));
    });
    NOT_PROSE.forEach(function (selector) {
      article.querySelectorAll(selector).forEach(function (node) { node.remove(); });
    });
    var part = null;
    if (anchor) {
      try { part = article.querySelector(anchor); } catch (error) { part = null; }
    }
    return (part || article).textContent.replace(/\s+/g, " ").trim();
  }

  function start() {
    // Sphinx's searchtools.js (the search page only) reads snippets through Search.htmlToText;
    // its Search is a top-level const, a global name but no property of window
    if (typeof Search !== "undefined" && typeof Search.htmlToText === "function") {
      Search.htmlToText = proseText;  // eslint-disable-line no-undef
    }
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
