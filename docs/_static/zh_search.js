/* Chinese queries for Sphinx's search page.
 *
 * The Chinese index is cut into words by jieba at build time ("策略梯度定理" is indexed as
 * 策略, 梯度, 定理), but the browser's default splitQuery keeps a run of Chinese characters as
 * one term, which is then in no index. Here each such run is cut again, greedily, into the
 * longest words the index itself holds (forward maximum matching), so that 策略梯度 finds the
 * pages holding 策略 and 梯度. Characters that start no indexed word are dropped: the index
 * keeps no one-character word, so requiring them would rule out every page.
 */
(function () {
  "use strict";
  const WORDS = /[^\p{Letter}\p{Number}_\p{Emoji_Presentation}]+/gu;
  const HAN = /(\p{Script=Han}+)/u;
  const LONGEST = 8; // characters: longer than any indexed Chinese word

  function known(word) {
    const index = typeof Search !== "undefined" ? Search._index : null;
    if (!index) return false;
    const has = (table) => table && Object.prototype.hasOwnProperty.call(table, word);
    return has(index.terms) || has(index.titleterms);
  }

  function cutHan(run) {
    const words = [];
    let start = 0;
    while (start < run.length) {
      let end = Math.min(run.length, start + LONGEST);
      while (end > start + 1 && !known(run.slice(start, end))) end -= 1;
      const word = run.slice(start, end);
      if (word.length > 1 || known(word)) words.push(word);
      start = end;
    }
    return words.length ? words : [run]; // nothing known: keep the run (it finds nothing)
  }

  window.splitQuery = (query) =>
    query
      .split(WORDS)
      .filter((term) => term)
      .flatMap((term) =>
        term.split(HAN).filter((part) => part).flatMap((part) =>
          HAN.test(part) ? cutHan(part) : [part]));
})();
