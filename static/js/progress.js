/* Sizes the progress bars from their data-percent attribute (no inline style, for the CSP),
   on load and after each htmx swap of the batch's progress. */
(function () {
  function size(root) {
    root.querySelectorAll(".progress-bar[data-percent]").forEach(function (bar) {
      bar.style.width = bar.getAttribute("data-percent") + "%";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { size(document); });
  document.addEventListener("htmx:afterSwap", function (event) { size(event.target); });
})();
