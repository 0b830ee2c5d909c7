/* Asks for confirmation before an irreversible action: a button or link carrying
   data-confirm="<question>" goes on only if the person confirms. No inline handler, so the
   Content-Security-Policy forbids every inline script. */
document.addEventListener("click", function (event) {
  var target = event.target.closest("[data-confirm]");
  if (target && !window.confirm(target.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});
