"""Filters of the conventions list (django-filter): search, type, status, commune, service, year."""

import re

import django_filters
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from conventions.models import Convention, ConventionKind, ConventionService, Party, Status
from mutualisation.collation import FrenchOrder
from mutualisation.forms import Form
from mutualisation.models import Organisation, Service

SIREN = re.compile(r"[0-9]{9}")


class ConventionFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Recherche"), method="search")
    kind = django_filters.ChoiceFilter(label=_("Type"), choices=ConventionKind.choices)
    status = django_filters.ChoiceFilter(label=_("Statut"), choices=Status.choices)
    # A text field (name or SIREN), not a list of every organisation (thousands at national
    # scale): static/js/organisation-search.js makes it searchable through
    # ``conventions:organisations``; without JavaScript, the typed text filters alike.
    organisation = django_filters.CharFilter(
        label=_("Commune ou organisation"),
        method="party",
        max_length=200,
        help_text=_("Nom ou SIREN"),
    )
    service = django_filters.ModelChoiceFilter(
        label=_("Service"), queryset=Service.objects.order_by(FrenchOrder("name")), method="covers"
    )
    year = django_filters.NumberFilter(label=_("Année d'application"), method="active_in")

    class Meta:
        model = Convention
        form = Form
        fields = ["q", "kind", "status", "organisation", "service", "year"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        # Before the form is built: the services of the conventions the user may see, not
        # another territory's.
        self.filters["service"].queryset = Service.objects.filter(
            pk__in=ConventionService.objects.filter(
                convention__in=Convention.objects.visible_to(user)
            ).values("service_id")
        ).order_by(FrenchOrder("name"))
        field = self.form.fields["organisation"]
        field.widget.attrs.update(
            {
                "data-search-url": reverse("conventions:organisations"),
                "autocomplete": "off",
                "placeholder": _("Nom ou SIREN"),
            }
        )
        chosen = self.data.get("organisation", "") if self.data else ""
        if SIREN.fullmatch(chosen.strip()):
            # The chosen organisation's name, for the searchable field to show it.
            name = (
                Organisation.objects.visible_to(user)
                .filter(siren=chosen.strip())
                .values_list("name", flat=True)
                .first()
            )
            if name:
                field.widget.attrs["data-label"] = name

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(reference__icontains=value) | Q(title__icontains=value) | Q(object__icontains=value)
        )

    def party(self, queryset, name, value):
        """Conventions to which an organisation the user may see is party: by its SIREN, or
        by a part of its name."""
        value = value.strip()
        organisations = Organisation.objects.visible_to(self.user)
        if SIREN.fullmatch(value):
            organisations = organisations.filter(siren=value)
        else:
            organisations = organisations.filter(name__icontains=value)
        return queryset.filter(
            Exists(
                Party.objects.filter(
                    convention=OuterRef("pk"), organisation__in=organisations.values("pk")
                )
            )
        )

    def covers(self, queryset, name, value):
        return queryset.filter(
            Exists(ConventionService.objects.filter(convention=OuterRef("pk"), service=value))
        )

    def active_in(self, queryset, name, value):
        """Conventions applicable during the year, by the same rule as billing
        (``conventions.services.in_force.coverage``: avenants, termination, tacit renewal),
        computed by the database."""
        from conventions.services.in_force import covered_in

        year = int(value)
        if not 1900 <= year <= 2200:
            return queryset.none()
        return covered_in(queryset, year)
