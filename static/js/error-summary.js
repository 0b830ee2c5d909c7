/* A page that comes back with errors puts the focus on their summary (#erreurs, role="alert"):
   a screen reader reads it at once, a keyboard user starts there. Each link of the summary
   moves the focus into the field it names (following a #fragment only scrolls to it). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("erreurs");
    if (!summary) {
      return;
    }
    summary.focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      var field = link && document.getElementById(link.getAttribute("href").slice(1));
      if (field) {
        event.preventDefault();
        field.focus();
        field.scrollIntoView({ block: "center" });
      }
    });
  });
})();
