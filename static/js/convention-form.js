/* The convention form shaped by the type chosen: the parties' roles offered are those the type
   allows (the members of a service commun, L5211-4-2; a provider and its beneficiaries for the
   other types), and the managing organisation is asked for a service commun only. The server
   applies the same rule (conventions.models.roles_for) and explains any refusal: this script
   only spares the person a choice the law forbids. */
(function () {
  "use strict";
  var SERVICE_COMMUN = "SERVICE_COMMUN";

  function allowedRoles(kind) {
    return kind === SERVICE_COMMUN ? ["MEMBER"] : ["PROVIDER", "BENEFICIARY"];
  }

  function shape(kindSelect) {
    var kind = kindSelect.value;
    var allowed = allowedRoles(kind);
    var roles = document.querySelectorAll('select[name^="parties-"][name$="-role"]');
    roles.forEach(function (select) {
      Array.prototype.forEach.call(select.options, function (option) {
        if (!option.value) {
          return;
        }
        var offered = allowed.indexOf(option.value) !== -1;
        option.hidden = !offered;
        option.disabled = !offered;
      });
      if (select.value && allowed.indexOf(select.value) === -1) {
        select.value = "";
      }
      // A single role possible: given to every row that names an organisation; a row left
      // empty stays empty (the server ignores it only if nothing in it was changed).
      var row = select.closest("[role=group]");
      var organisation = row && row.querySelector('select[name$="-organisation"]');
      if (allowed.length === 1) {
        select.value = organisation && !organisation.value ? "" : allowed[0];
      }
    });
    var managing = document.getElementById("champ-gestionnaire");
    if (managing) {
      managing.hidden = kind !== SERVICE_COMMUN;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var kindSelect = document.querySelector('select[name="kind"]');
    if (!kindSelect) {
      return;
    }
    shape(kindSelect);
    kindSelect.addEventListener("change", function () {
      shape(kindSelect);
    });
    document.addEventListener("change", function (event) {
      if (event.target.matches('select[name^="parties-"][name$="-organisation"]')) {
        shape(kindSelect);
      }
    });
  });
})();
