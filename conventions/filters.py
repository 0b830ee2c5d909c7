"""Filters of the conventions list (django-filter): search, type, status, commune, service, year."""

from datetime import date

import django_filters
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from conventions.models import Convention, ConventionKind, ConventionService, Party, Status
from mutualisation.models import Organisation, Service


class ConventionFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Recherche"), method="search")
    kind = django_filters.ChoiceFilter(label=_("Type"), choices=ConventionKind.choices)
    status = django_filters.ChoiceFilter(label=_("Statut"), choices=Status.choices)
    organisation = django_filters.ModelChoiceFilter(
        label=_("Commune ou organisation"), queryset=Organisation.objects.none(), method="party"
    )
    service = django_filters.ModelChoiceFilter(
        label=_("Service"), queryset=Service.objects.order_by("name"), method="covers"
    )
    year = django_filters.NumberFilter(label=_("Année d'application"), method="active_in")

    class Meta:
        model = Convention
        fields = ["q", "kind", "status", "organisation", "service", "year"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Only organisations the user may see are offered (a commune reader sees their own).
        self.filters["organisation"].queryset = Organisation.objects.visible_to(user).order_by(
            "name"
        )
        # The services of the conventions the user may see, not another territory's.
        self.filters["service"].queryset = Service.objects.filter(
            pk__in=ConventionService.objects.filter(
                convention__in=Convention.objects.visible_to(user)
            ).values("service_id")
        ).order_by("name")

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(reference__icontains=value) | Q(title__icontains=value) | Q(object__icontains=value)
        )

    def party(self, queryset, name, value):
        return queryset.filter(
            Exists(Party.objects.filter(convention=OuterRef("pk"), organisation=value))
        )

    def covers(self, queryset, name, value):
        return queryset.filter(
            Exists(ConventionService.objects.filter(convention=OuterRef("pk"), service=value))
        )

    def active_in(self, queryset, name, value):
        """Conventions applicable during the year, by the same rule as billing
        (``conventions.services.coverage``: avenants, termination, tacit renewal)."""
        from conventions.services.in_force import coverage

        year = int(value)
        if not 1900 <= year <= 2200:
            return queryset.none()
        candidates = (
            queryset.filter(start_date__lte=date(year, 12, 31))
            .select_related("termination")
            .prefetch_related("terms__amendment")
        )
        return queryset.filter(pk__in=[c.pk for c in candidates if coverage(c, year)])
