"""« À faire »: what each role has to do, as the home page opens on it (the home renders it
through the ``todo`` template tag: mutualisation may not import the apps above it).

Each block is a count and the first items, each linking to the page where the thing is done;
everything is scoped by ``mutualisation.rules.scope_of`` (the territories whose staff the user
is; a commune reader's own organisation). A bounded number of queries whatever the data."""

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from conventions.models import Convention, Deliberation, Party, Status, Vote
from conventions.services import fmt
from conventions.services.overview import alerts
from costing.models import CostBase, Statement, StatementRemark, StatementStatus, UnitCost
from costing.services import deadline_for
from mutualisation.french import of
from mutualisation.models import Organisation, Role
from mutualisation.rules import scope_of
from mutualisation.templatetags.french import long_date

# How many items each block lists; the count says how many there are in all.
ITEMS_SHOWN = 5
# Conventions ending, or whose notice date comes, within these days (as the conventions list).
EXPIRY_DAYS = 90
WAITING_STATUSES = (Status.DRAFT, Status.CONSULTATION)


@dataclass
class Item:
    label: str  # the link's text: names the thing
    url: str
    detail: str = ""


@dataclass
class Block:
    title: str
    summary: str  # the count, in a sentence; or what is said when there is nothing
    items: list[Item] = field(default_factory=list)
    more_url: str = ""
    more_label: str = ""
    note: str = ""  # shown before the count (a deadline)
    footnote: str = ""  # shown after the items (what else waits)


def _count(queryset, field_name):
    """A subquery counting ``queryset``'s rows per ``field_name`` = the outer row."""
    counted = (
        queryset.filter(**{field_name: OuterRef("pk")})
        .order_by()
        .values(field_name)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def first_and_total(queryset) -> tuple[list, int]:
    """The first items a block lists, and how many there are in all (two queries, whatever
    the number)."""
    return list(queryset[:ITEMS_SHOWN]), queryset.count()


def _convention_item(convention, detail="") -> Item:
    return Item(
        label=f"{convention.reference} — {convention.title}",
        url=reverse("conventions:detail", args=[convention.reference]),
        detail=detail,
    )


def waiting_for_deliberations(conventions) -> Block:
    """Drafts and conventions in consultation whose parties have not all deliberated."""
    parties = Party.objects.filter(joined_by__isnull=True)
    adopted = (
        Deliberation.objects.filter(
            amendment__isnull=True, vote=Vote.ADOPTED, convention=OuterRef("pk")
        )
        .order_by()
        .values("convention")
        .annotate(n=Count("organisation", distinct=True))
        .values("n")
    )
    waiting = (
        conventions.filter(status__in=WAITING_STATUSES)
        .annotate(
            party_count=_count(parties, "convention"),
            adopted_count=Coalesce(Subquery(adopted, output_field=IntegerField()), Value(0)),
        )
        .filter(adopted_count__lt=F("party_count"))
        .only("reference", "title")
        .order_by("reference")
    )
    rows, total = first_and_total(waiting)
    items = []
    for convention in rows:
        missing = convention.party_count - convention.adopted_count
        items.append(
            _convention_item(
                convention,
                ngettext(
                    "%(count)d délibération manquante",
                    "%(count)d délibérations manquantes",
                    missing,
                )
                % {"count": missing},
            )
        )
    return Block(
        title=_("Délibérations attendues"),
        summary=ngettext(
            "%(count)d convention attend les délibérations de ses parties.",
            "%(count)d conventions attendent les délibérations de leurs parties.",
            total,
        )
        % {"count": total}
        if total
        else _("Aucune convention n'attend de délibération."),
        items=items,
        more_url=f"{reverse('conventions:list')}?status={Status.CONSULTATION}"
        if total > ITEMS_SHOWN
        else "",
        more_label=_("Toutes les conventions en consultation"),
    )


def blocked(conventions, today: date) -> Block:
    """Conventions that cannot go on: an assembly rejected them, or signed and past their start
    date, they have not entered into force (a publicity or a gate is missing)."""
    rejected = Deliberation.objects.filter(amendment__isnull=True, vote=Vote.REJECTED)
    stuck = (
        conventions.filter(
            Q(
                status__in=(*WAITING_STATUSES, Status.DELIBERATED),
                pk__in=rejected.values("convention"),
            )
            | Q(status=Status.SIGNED, start_date__lte=today)
        )
        .only("reference", "title", "status")
        .order_by("reference")
    )
    rows, total = first_and_total(stuck)
    rejecting = {}
    for convention_id, name in (
        rejected.filter(convention__in=[c.pk for c in rows])
        .order_by("organisation__name")
        .values_list("convention_id", "organisation__name")
    ):
        rejecting.setdefault(convention_id, []).append(name)
    items = []
    for convention in rows:
        if convention.status == Status.SIGNED:
            reason = _("Signée, date d'effet passée, pas encore en vigueur")
        else:
            reason = _("Délibération rejetée par %(names)s") % {
                "names": ", ".join(rejecting.get(convention.pk, []))
            }
        items.append(_convention_item(convention, reason))
    return Block(
        title=_("Conventions bloquées"),
        summary=ngettext(
            "%(count)d convention ne peut avancer sans intervention.",
            "%(count)d conventions ne peuvent avancer sans intervention.",
            total,
        )
        % {"count": total}
        if total
        else _("Aucune convention bloquée."),
        items=items,
        more_url=reverse("conventions:list") if total > ITEMS_SHOWN else "",
        more_label=_("Toutes les conventions"),
    )


def expiring(conventions, today: date) -> Block:
    found = alerts(within_days=EXPIRY_DAYS, on=today, conventions=conventions)
    return Block(
        title=_("Échéances dans les %(days)d jours") % {"days": EXPIRY_DAYS},
        summary=ngettext(
            "%(count)d échéance ou date de préavis à venir.",
            "%(count)d échéances ou dates de préavis à venir.",
            len(found),
        )
        % {"count": len(found)}
        if found
        else _("Aucune échéance dans les %(days)d jours.") % {"days": EXPIRY_DAYS},
        items=[_convention_item(alert.convention, alert.label) for alert in found[:ITEMS_SHOWN]],
        more_url=reverse("conventions:list") if len(found) > ITEMS_SHOWN else "",
        more_label=_("Toutes les échéances, sur la liste des conventions"),
    )


def unit_costs_to_notify(territory_ids, is_superuser: bool, today: date) -> Block:
    year = today.year
    deadline = deadline_for(year)
    days = (deadline - today).days
    if days > 0:
        when = ngettext("dans %(count)d jour", "dans %(count)d jours", days) % {"count": days}
    elif days == 0:
        when = _("aujourd'hui")
    else:
        when = _("dépassée")
    note = _("Date limite de notification des coûts unitaires %(year)s : %(date)s (%(when)s).") % {
        "year": year,
        "date": long_date(deadline),
        "when": when,
    }
    if days < 0:
        # The year's deadline passed: the next one is what the budget work now aims at.
        note += " " + _("Prochaine date limite : %(date)s, pour les coûts unitaires %(year)s.") % {
            "date": long_date(deadline_for(year + 1)),
            "year": year + 1,
        }
    pending = UnitCost.objects.current().filter(year=year, notified_on__isnull=True)
    if not is_superuser:
        pending = pending.filter(service__territory_id__in=territory_ids)
    pending = (
        pending.annotate(
            base_id=Subquery(
                CostBase.objects.filter(service=OuterRef("service"), year=year)
                .order_by("-pk")
                .values("pk")[:1]
            )
        )
        .select_related("service")
        .only("service__name", "year")
        .order_by("service__name", "pk")
    )
    rows, total = first_and_total(pending)
    list_url = reverse("costing:cost-bases", args=[year])
    return Block(
        title=_("Notification des coûts unitaires"),
        note=note,
        summary=ngettext(
            "%(count)d coût unitaire %(year)s non notifié.",
            "%(count)d coûts unitaires %(year)s non notifiés.",
            total,
        )
        % {"count": total, "year": year}
        if total
        else _("Tous les coûts unitaires %(year)s calculés sont notifiés.") % {"year": year},
        items=[
            Item(
                label=row.service.name,
                url=reverse("costing:cost-base", args=[row.base_id]) if row.base_id else list_url,
            )
            for row in rows
        ],
        more_url=list_url,
        more_label=_("Bases de coûts et coûts unitaires %(year)s") % {"year": year},
    )


def _statement_item(statement) -> Item:
    detail = (
        _("remarques possibles jusqu'au %(date)s") % {"date": fmt(statement.review_until)}
        if statement.review_until
        else ""
    )
    remarks = getattr(statement, "remark_count", 0)
    if remarks:
        detail += (", " if detail else "") + ngettext(
            "%(count)d remarque ouverte", "%(count)d remarques ouvertes", remarks
        ) % {"count": remarks}
    return Item(
        label=_("Exercice %(year)s — %(convention)s — %(payer)s")
        % {
            "year": statement.year,
            "convention": statement.convention.reference,
            "payer": statement.payer.name,
        },
        url=reverse("costing:statement", args=[statement.pk]),
        detail=detail,
    )


def _drafts(statements):
    return (
        statements.filter(status=StatementStatus.DRAFT)
        .annotate(
            remark_count=_count(
                StatementRemark.objects.filter(resolved_at__isnull=True), "statement"
            )
        )
        .select_related("convention", "payer")
        .only("year", "review_until", "convention__reference", "payer__name")
        .order_by("review_until", "year", "convention__reference", "pk")
    )


def drafts_to_issue(conventions, today: date) -> Block:
    drafts = _drafts(Statement.objects.filter(convention__in=conventions))
    rows, total = first_and_total(drafts)
    remarks = StatementRemark.objects.filter(
        statement__status=StatementStatus.DRAFT,
        statement__convention__in=conventions,
        resolved_at__isnull=True,  # a resolved remark has had its answer
    ).count()
    return Block(
        title=_("États à émettre"),
        summary=ngettext(
            "%(count)d état en projet à émettre.",
            "%(count)d états en projet à émettre.",
            total,
        )
        % {"count": total}
        if total
        else _("Aucun état en projet."),
        footnote=ngettext(
            "%(count)d remarque en attente de réponse (avant l'émission de l'état).",
            "%(count)d remarques en attente de réponse (avant l'émission des états).",
            remarks,
        )
        % {"count": remarks}
        if remarks
        else _("Aucune remarque en attente de réponse."),
        items=[_statement_item(statement) for statement in rows],
        more_url=reverse("costing:statements", args=[today.year - 1]),
        more_label=_("États de l'exercice %(year)s") % {"year": today.year - 1},
    )


def drafts_to_review(organisation_ids, today: date) -> Block:
    drafts = _drafts(
        Statement.objects.filter(payer_id__in=organisation_ids, approved_at__isnull=True).filter(
            Q(review_until__isnull=True) | Q(review_until__gte=today)
        )
    )
    rows, total = first_and_total(drafts)
    return Block(
        title=_("États à examiner"),
        summary=ngettext("%(count)d état à examiner.", "%(count)d états à examiner.", total)
        % {"count": total}
        if total
        else _("Aucun état à examiner."),
        items=[_statement_item(statement) for statement in rows],
        more_url=reverse("costing:statements", args=[today.year - 1])
        if total > ITEMS_SHOWN
        else "",
        more_label=_("États de l'exercice %(year)s") % {"year": today.year - 1},
    )


def conventions_in_force(user) -> Block:
    in_force = (
        Convention.objects.visible_to(user)
        .filter(status=Status.IN_FORCE)
        .only("reference", "title")
        .order_by("reference")
    )
    rows, total = first_and_total(in_force)
    return Block(
        title=_("Conventions en vigueur"),
        summary=ngettext(
            "%(count)d convention en vigueur.", "%(count)d conventions en vigueur.", total
        )
        % {"count": total}
        if total
        else _("Aucune convention en vigueur."),
        items=[_convention_item(convention) for convention in rows],
        more_url=f"{reverse('conventions:list')}?status={Status.IN_FORCE}" if total else "",
        more_label=_("Toutes les conventions en vigueur"),
    )


@dataclass
class Part:
    title: str
    blocks: list[Block]


def todo_for(user, today: date | None = None) -> list[Part]:
    """The parts of « À faire » the user's roles open, in the order of the roles."""
    today = today or timezone.localdate()
    scope = scope_of(user)
    staff = Convention.objects.of_territories(user)
    parts = []
    if Role.MANAGER in scope.roles or Role.ADMINISTRATOR in scope.roles:
        parts.append(
            Part(
                _("Conventions"),
                [
                    blocked(staff, today),
                    waiting_for_deliberations(staff),
                    expiring(staff, today),
                ],
            )
        )
    if Role.FINANCE in scope.roles or Role.ADMINISTRATOR in scope.roles:
        parts.append(
            Part(
                _("Coûts et états"),
                [
                    unit_costs_to_notify(scope.territory_ids, scope.is_superuser, today),
                    drafts_to_issue(staff, today),
                ],
            )
        )
    if Role.COMMUNE_READER in scope.roles:
        names = sorted(
            Organisation.objects.filter(
                pk__in=scope.organisation_ids,
                user_memberships__role=Role.COMMUNE_READER,
                user_memberships__user=user,
            ).values_list("name", flat=True)
        )
        parts.append(
            Part(
                _("États et conventions %(of_names)s") % {"of_names": of(", ".join(names))},
                [drafts_to_review(scope.organisation_ids, today), conventions_in_force(user)],
            )
        )
    return parts
