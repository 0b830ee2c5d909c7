"""The conventions list table (django-tables2)."""

import django_tables2 as tables
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conventions.models import Convention, ConventionKind, Direction, Status
from conventions.services.in_force import direction_of, presence, under_signed_act
from mutualisation.tables import TABLE_ATTRS, header, lifecycle_order


def agreed_parties(convention) -> list:
    """The parties of ``convention`` the signed acts made, and not withdrawn."""
    today = timezone.localdate()
    return [p for p in convention.parties.all() if under_signed_act(p, today)]


class ConventionTable(tables.Table):
    # The fields the rows read (the list loads nothing else of a convention).
    LOADED = ("pk", "reference", "title", "kind", "status", "start_date")

    reference = tables.Column(
        verbose_name=_("Référence"),
        linkify=True,
        attrs={"th": header(), "td": {"class": "text-nowrap"}},
    )
    title = tables.Column(verbose_name=_("Intitulé"))
    kind = tables.Column(verbose_name=_("Type"))
    parties = tables.Column(verbose_name=_("Parties"), empty_values=(), orderable=False)
    status = tables.Column(verbose_name=_("Statut"))
    start_date = tables.DateColumn(verbose_name=_("Prise d'effet"), format="SHORT_DATE_FORMAT")

    class Meta:
        model = Convention
        fields = ["reference", "title", "kind", "parties", "status", "start_date"]
        attrs = TABLE_ATTRS
        order_by = ("-start_date",)
        empty_text = _("Aucune convention ne correspond à ces critères.")

    def order_status(self, queryset, is_descending):
        """By the lifecycle (brouillon, en consultation… échue), not by the internal codes."""
        return lifecycle_order(queryset, is_descending, Status.values, "reference")

    def render_kind(self, record, value):
        direction = (
            direction_of(agreed_parties(record))
            if record.kind == ConventionKind.MISE_A_DISPOSITION
            else None
        )
        if direction:
            return format_html("{}<br><small>{}</small>", value, Direction(direction).label)
        return value

    def render_parties(self, record):
        """The parties the signed acts made; one a draft avenant would bring in, said so."""
        today = timezone.localdate()
        names = []
        for party in record.parties.all():
            if under_signed_act(party, today):
                names.append(party.organisation.name)
            elif presence(party, start="joined_by", end="left_by").never:
                names.append(
                    gettext("%(name)s (avenant en projet)") % {"name": party.organisation.name}
                )
        return ", ".join(names)

    def render_status(self, record, value):
        return format_html(
            '<span class="badge text-bg-{}">{}</span>',
            STATUS_BADGES.get(record.status, "secondary"),
            value,
        )


STATUS_BADGES = {
    "DRAFT": "secondary",
    "CONSULTATION": "info",
    "DELIBERATED": "primary",
    "SIGNED": "primary",
    "IN_FORCE": "success",
    "TERMINATED": "dark",
    "EXPIRED": "dark",
}
