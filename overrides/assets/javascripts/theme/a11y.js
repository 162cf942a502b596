// Two accessibility repairs to what Material's bundle and KaTeX put on a page
// (found by axe-core; tests/test_browser_safety_pages.py):
//
// - The copy button of every code block sits in a <nav> that Material adds
//   when the block scrolls into view; a page of code blocks then has many
//   unnamed navigation landmarks (axe: landmark-unique). They are a button
//   bar, not navigation, so they leave the landmark list.
// - A displayed formula wider than the column scrolls sideways; a keyboard
//   user can scroll it only if it can take focus (axe:
//   scrollable-region-focusable). Material does the same for code blocks.
(function () {
  function unmarkCodeNav(root) {
    for (const nav of root.querySelectorAll("nav.md-code__nav:not([role])")) nav.setAttribute("role", "none");
  }

  function focusableWhenScrolling() {
    for (const block of document.querySelectorAll(".md-typeset .arithmatex")) {
      const scrolls = block.scrollWidth > block.clientWidth + 1;
      if (scrolls && !block.hasAttribute("tabindex")) {
        block.setAttribute("tabindex", "0");
        block.dataset.scrollFocus = "";
      } else if (!scrolls && block.dataset.scrollFocus !== undefined) {
        block.removeAttribute("tabindex");
        delete block.dataset.scrollFocus;
      }
    }
  }

  function start() {
    unmarkCodeNav(document);
    focusableWhenScrolling();
  }

  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.matches("nav.md-code__nav")) unmarkCodeNav(node.parentNode);
        else if (node.querySelector("nav.md-code__nav")) unmarkCodeNav(node);
      }
    }
  }).observe(document.body, { childList: true, subtree: true });

  let pending = 0;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(focusableWhenScrolling);
  });
  if (window.document$) window.document$.subscribe(start);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
