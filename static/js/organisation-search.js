/* The conventions list's organisation filter: a text field (name or SIREN) that, with
   JavaScript, becomes a searchable list (Tom Select) asking the server for the organisations
   matching what is typed (at most 20, data-search-url), instead of a list of every one.
   The chosen organisation's SIREN is the field's value; text typed and not chosen filters by
   name, as it does without JavaScript. */
(function () {
  function escape(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }

  function enhance(input) {
    if (input.tomselect || typeof TomSelect === "undefined") {
      return;
    }
    var value = input.value.trim();
    var label = input.getAttribute("data-label");
    var options = value ? [{ siren: value, name: label || value, kind: "" }] : [];
    new TomSelect(input, {
      mode: "single",
      maxItems: 1,
      valueField: "siren",
      labelField: "name",
      searchField: ["name", "siren"],
      options: options,
      items: value ? [value] : [],
      create: function (text) {
        return { siren: text.trim(), name: text.trim(), kind: "" };
      },
      createOnBlur: true,
      persist: false,
      loadThrottle: 300,
      shouldLoad: function (query) {
        return query.trim().length >= 2;
      },
      load: function (query, callback) {
        var url = input.getAttribute("data-search-url") + "?q=" + encodeURIComponent(query);
        fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then(function (response) {
            return response.ok ? response.json() : { results: [] };
          })
          .then(function (data) {
            callback(data.results);
          })
          .catch(function () {
            callback();
          });
      },
      render: {
        option: function (item) {
          return (
            "<div>" + escape(item.name) +
            (item.kind ? ' <small class="text-body-secondary">' + escape(item.kind) +
              " · SIREN " + escape(item.siren) + "</small>" : "") +
            "</div>"
          );
        },
        item: function (item) {
          return "<div>" + escape(item.name) + "</div>";
        },
        option_create: function (data) {
          return '<div class="create">Rechercher « ' + escape(data.input) + " »</div>";
        },
        no_results: function () {
          return '<div class="no-results">Aucune organisation trouvée.</div>';
        },
        loading: function () {
          return '<div class="spinner-border spinner-border-sm m-2" role="status">' +
            '<span class="visually-hidden">Recherche…</span></div>';
        },
      },
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-search-url]").forEach(enhance);
  });
})();
