// Code blocks wider than the column: mark them so the stylesheet shows a fade at the right edge
// (over the block's whole height) until the block is scrolled to its end.
(() => {
  const mark = () => {
    for (const pre of document.querySelectorAll("div.highlight > pre")) {
      const box = pre.parentElement;
      const wide = pre.scrollWidth > pre.clientWidth + 1;
      box.classList.toggle("scrolls-x", wide);
      box.classList.toggle("scrolled-end", wide && pre.scrollLeft + pre.clientWidth >= pre.scrollWidth - 1);
    }
  };
  document.addEventListener("DOMContentLoaded", () => {
    mark();
    for (const pre of document.querySelectorAll("div.highlight > pre")) {
      pre.addEventListener("scroll", mark, { passive: true });
    }
    window.addEventListener("resize", mark, { passive: true });
  });
})();
