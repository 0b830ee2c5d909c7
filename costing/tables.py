"""The year's rows, page by page (django-tables2): reimbursement lines, net positions,
settlements, the managing organisations' own shares and the compliance findings; the
statements and cost bases of the year, sortable by their columns. Each table
keeps its own page in the query string (its prefix), the page's filters with it; its rows are
drawn by its template (costing/tables/), the markup of the page before pagination."""

import django_tables2 as tables
from django.db.models import Case, DateField, F, IntegerField, Value, When
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from costing.models import InstalmentStatus, StatementStatus
from mutualisation.collation import FrenchOrder
from mutualisation.tables import TABLE_ATTRS, header, lifecycle_order
from mutualisation.templatetags.money import euros, units

PER_PAGE = 50


def column(label, **kwargs):
    return tables.Column(verbose_name=label, orderable=False, empty_values=(), **kwargs)


class YearTable(tables.Table):
    caption = ""

    class Meta:
        attrs = {"class": "table table-sm table-striped align-middle"}
        orderable = False


class LineTable(YearTable):
    convention = column(_("Convention"))
    payer = column(_("Débiteur"))
    payee = column(_("Créancier"))
    service = column(_("Service"))
    period = column(_("Période"))
    units = column(_("Unités"), attrs={"th": {"class": "text-end"}})
    unit_cost = column(_("Coût unitaire"), attrs={"th": {"class": "text-end"}})
    amount = column(_("Montant"), attrs={"th": {"class": "text-end"}})
    caption = _("Remboursements par convention, débiteur, service et période")

    class Meta(YearTable.Meta):
        template_name = "costing/tables/lines.html"
        empty_text = _("Aucun remboursement pour cet exercice.")


class PositionTable(YearTable):
    organisation = column(_("Organisation"))
    receivable = column(_("Coût brut à recevoir"), attrs={"th": {"class": "text-end"}})
    payable = column(_("Coût brut à payer"), attrs={"th": {"class": "text-end"}})
    net = column(_("Position brute"), attrs={"th": {"class": "text-end"}})
    settled = column(_("Déjà réglé (AC et acomptes)"), attrs={"th": {"class": "text-end"}})
    remaining = column(_("Reste à régler"), attrs={"th": {"class": "text-end"}})
    direction = column(_("Sens"))
    caption = _("Position nette de chaque organisation")

    class Meta(YearTable.Meta):
        template_name = "costing/tables/positions.html"
        empty_text = _("Aucune position pour cet exercice.")


class DashboardPositionTable(YearTable):
    organisation = column(_("Organisation"))
    receivable = column(_("Brut à recevoir"), attrs={"th": {"class": "text-end"}})
    payable = column(_("Brut à payer"), attrs={"th": {"class": "text-end"}})
    net = column(_("Position brute"), attrs={"th": {"class": "text-end"}})
    remaining = column(_("Reste à régler"), attrs={"th": {"class": "text-end"}})
    caption = _(
        "Brut : coût annuel de l'exercice. Reste à régler : après l'imputation sur l'attribution "
        "de compensation et les acomptes appelés (positif : à recevoir ; négatif : à payer)."
    )

    class Meta(YearTable.Meta):
        template_name = "costing/tables/dashboard_positions.html"
        empty_text = _("Aucune position pour cet exercice.")


class SettlementTable(YearTable):
    convention = column(_("Convention"))
    payer = column(_("Débiteur"))
    mode = column(_("Modalité"))
    forecast = column(_("Prévision"), attrs={"th": {"class": "text-end"}})
    ac_deduction = column(_("Imputé sur l'AC"), attrs={"th": {"class": "text-end"}})
    called = column(_("Acomptes appelés"), attrs={"th": {"class": "text-end"}})
    actual = column(_("Coût annuel brut"), attrs={"th": {"class": "text-end"}})
    balance = column(_("Solde"), attrs={"th": {"class": "text-end"}})
    channel = column(_("Règlement du solde"))
    caption = _("Prévision, attribution de compensation, acomptes et solde de chaque débiteur")

    class Meta(YearTable.Meta):
        template_name = "costing/tables/settlements.html"
        empty_text = _("Aucun règlement pour cet exercice.")


class BorneTable(YearTable):
    convention = column(_("Convention"))
    organisation = column(_("Organisation gestionnaire"))
    service = column(_("Service"))
    amount = column(_("Quote-part"), attrs={"th": {"class": "text-end"}})
    caption = _("Quote-part supportée par l'organisation gestionnaire")

    class Meta(YearTable.Meta):
        template_name = "costing/tables/borne.html"


class FindingTable(YearTable):
    convention = column(_("Convention"))
    message = column(_("Anomalie"))
    caption = _("Anomalies relevées par convention")

    class Meta(YearTable.Meta):
        template_name = "costing/tables/findings.html"
        empty_text = _("Aucune anomalie relevée.")


class AlertTable(YearTable):
    convention = column(_("Convention"))
    label = column(_("Échéance"))
    caption = _("Conventions arrivant à échéance (180 jours)")

    class Meta(YearTable.Meta):
        template_name = "costing/tables/alerts.html"
        empty_text = _("Aucune.")


# --- lists that sort by any column ----------------------------------------------------------


def french(field: str):
    """A column ordered by ``field`` in French (Cébazat before Cournon)."""

    def order(table, queryset, is_descending):
        key = FrenchOrder(field)
        return queryset.order_by(key.desc() if is_descending else key.asc(), "pk"), True

    return order


def numbers(column_label, **kwargs):
    return tables.Column(
        verbose_name=column_label,
        attrs={"th": header(**{"class": "text-end"}), "td": {"class": "text-end"}},
        **kwargs,
    )


class PayerPayeeTable(tables.Table):
    """A list of the year between debtors and creditors: their names sort in French."""

    class Meta:
        template_name = "costing/tables/_base.html"
        attrs = TABLE_ATTRS

    order_payer = french("payer__name")
    order_payee = french("payee__name")


class StatementTable(PayerPayeeTable):
    """The year's statements. Rows come annotated with ``is_cancelled``
    (``Statement.objects.with_state()``): the state column reads it and sorts on it."""

    number = tables.Column(
        verbose_name=_("Numéro"),
        empty_values=(),
        order_by=("number", "pk"),
        attrs={"th": header(), "td": {"class": "text-nowrap"}},
    )
    convention = tables.Column(
        verbose_name=_("Convention"),
        accessor="convention__reference",
        order_by=("convention__reference", "pk"),
        attrs={"th": header(), "td": {"class": "text-nowrap"}},
    )
    payer = tables.Column(verbose_name=_("Débiteur"), accessor="payer__name")
    payee = tables.Column(verbose_name=_("Créancier"), accessor="payee__name")
    total = numbers(_("Total"), order_by=("total", "pk"))
    balance = numbers(_("Solde"), order_by=("balance", "pk"))
    state = tables.Column(verbose_name=_("État"), empty_values=())
    review = tables.Column(
        verbose_name=_("Remarques jusqu'au"),
        accessor="review_until",
        empty_values=(),
    )
    caption = _("États de l'exercice")

    class Meta(PayerPayeeTable.Meta):
        empty_text = _("Aucun état pour cet exercice.")

    def order_state(self, queryset, is_descending):
        """In the order of a statement's life: projet, émis, annulé."""
        rank = Case(
            When(is_cancelled=True, then=Value(2)),
            When(status=StatementStatus.DRAFT, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        order = ("-" if is_descending else "") + "state_rank"
        return queryset.annotate(state_rank=rank).order_by(order, "number", "pk"), True

    def render_number(self, record):
        return format_html(
            '<a href="{}">{}</a>', record.get_absolute_url(), record.number or _("projet")
        )

    def render_total(self, value):
        return euros(value)

    def render_balance(self, value):
        return euros(value)

    def render_state(self, record):
        from costing.statements import statement_state

        return statement_state(record)

    def order_review(self, queryset, is_descending):
        """The drafts by the end of their review window, nearest first; the issued after."""
        key = Case(
            When(status=StatementStatus.DRAFT, then=F("review_until")),
            output_field=DateField(),
        )
        order = F("review_key")
        order = order.desc(nulls_last=True) if is_descending else order.asc(nulls_last=True)
        return queryset.annotate(review_key=key).order_by(order, "pk"), True

    def render_review(self, record):
        """The draft's review window (issued: closed)."""
        if record.is_issued or record.review_until is None:
            return "—"
        return date_format(record.review_until, "SHORT_DATE_FORMAT")


class CostBaseTable(tables.Table):
    """The year's cost bases with their current unit cost (``unit_costs``: by service id)."""

    service = tables.Column(verbose_name=_("Service"), accessor="service__name")
    source = tables.Column(
        verbose_name=_("Source"), order_by=("source", "source_year", "pk"), empty_values=()
    )
    eligible_cost = numbers(_("Coût éligible"), empty_values=(), orderable=False)
    reference_units = numbers(_("Unités de référence"), order_by=("reference_units", "pk"))
    unit_cost = numbers(_("Coût unitaire"), empty_values=(), orderable=False)
    notified_on = tables.Column(verbose_name=_("Notifié le"), empty_values=(), orderable=False)
    deadline = tables.Column(verbose_name=_("Date limite"), empty_values=(), orderable=False)
    caption = _("Bases de coûts et coûts unitaires")

    class Meta:
        template_name = "costing/tables/_base.html"
        attrs = TABLE_ATTRS
        empty_text = _("Aucune base de coûts pour cet exercice.")

    order_service = french("service__name")

    def __init__(self, *args, unit_costs: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.unit_costs = unit_costs

    def unit_cost_of(self, record):
        return self.unit_costs.get(record.service_id)

    def render_service(self, record):
        return format_html(
            '<a href="{}">{}</a><br><small>{}</small>',
            reverse("costing:cost-base", args=[record.pk]),
            record.service.name,
            record.service.provider.name,
        )

    def render_source(self, record):
        return f"{record.get_source_display()} {record.source_year}"

    def render_eligible_cost(self, record):
        unit_cost = self.unit_cost_of(record)
        return euros(unit_cost.eligible_cost) if unit_cost else "—"

    def render_unit_cost(self, record):
        unit_cost = self.unit_cost_of(record)
        if unit_cost is None:
            return "—"
        badges = []
        if unit_cost.version > 1:
            badges.append(
                format_html(
                    ' <span class="badge text-bg-secondary" title="{}">v{}</span>',
                    _("version %(version)s, corrige la version notifiée précédente")
                    % {"version": unit_cost.version},
                    unit_cost.version,
                )
            )
        if unit_cost.is_provisional:
            badges.append(
                format_html(' <span class="badge text-bg-warning">{}</span>', _("provisoire"))
            )
        return format_html(
            "{}{}", euros(unit_cost.amount), format_html_join("", "{}", ((b,) for b in badges))
        )

    def render_notified_on(self, record):
        unit_cost = self.unit_cost_of(record)
        if unit_cost is None or unit_cost.notified_on is None:
            return "—"
        notified = date_format(unit_cost.notified_on, "SHORT_DATE_FORMAT")
        if (
            unit_cost.notification_deadline
            and unit_cost.notified_on > unit_cost.notification_deadline
        ):
            return format_html(
                '{} <span class="badge text-bg-danger">{}</span>', notified, _("en retard")
            )
        return notified

    def render_reference_units(self, value):
        return units(value)

    def render_deadline(self, record):
        unit_cost = self.unit_cost_of(record)
        if unit_cost is None or unit_cost.notification_deadline is None:
            return "—"
        return date_format(unit_cost.notification_deadline, "SHORT_DATE_FORMAT")


class InstalmentTable(PayerPayeeTable):
    """The acomptes called in the year, with finance's actions on each (``exclude=("actions",)``
    for those who only read)."""

    convention = tables.Column(
        verbose_name=_("Convention"),
        accessor="convention__reference",
        order_by=("convention__reference", "rank", "pk"),
        attrs={"th": header(), "td": {"class": "text-nowrap"}},
    )
    payer = tables.Column(verbose_name=_("Débiteur"), accessor="payer__name")
    payee = tables.Column(verbose_name=_("Créancier"), accessor="payee__name")
    rank = numbers(_("Rang"), order_by=("rank", "pk"))
    due_date = tables.DateColumn(
        verbose_name=_("Échéance"), format="SHORT_DATE_FORMAT", order_by=("due_date", "pk")
    )
    amount = numbers(_("Montant"), order_by=("amount", "pk"))
    status = tables.Column(verbose_name=_("Statut"))
    titre_number = tables.Column(verbose_name=_("Titre"), default="—")
    paid_on = tables.DateColumn(verbose_name=_("Encaissé le"), format="SHORT_DATE_FORMAT")
    actions = tables.TemplateColumn(
        verbose_name=_("Actions"),
        template_name="costing/tables/instalment_actions.html",
        orderable=False,
        empty_values=(),
    )
    caption = _("Acomptes appelés, avec leur échéance, leur titre et leur encaissement")

    class Meta(PayerPayeeTable.Meta):
        empty_text = _("Aucun acompte appelé pour cet exercice.")

    def order_status(self, queryset, is_descending):
        """In the order of an acompte's life (appelé, titre émis, encaissé, annulé)."""
        return lifecycle_order(queryset, is_descending, InstalmentStatus.values, "due_date", "pk")

    def render_convention(self, record):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("conventions:detail", args=[record.convention.reference]),
            record.convention.reference,
        )

    def render_amount(self, value):
        return euros(value)


class PlannedInstalmentTable(tables.Table):
    """The acomptes the engine plans and nobody has called yet (rows: dicts, sorted here)."""

    convention = tables.Column(verbose_name=_("Convention"), attrs={"td": {"class": "text-nowrap"}})
    payer = tables.Column(verbose_name=_("Débiteur"))
    rank = numbers(_("Rang"))
    due_date = tables.DateColumn(verbose_name=_("Échéance"), format="SHORT_DATE_FORMAT")
    amount = numbers(_("Montant"))
    caption = _("Acomptes prévus, non encore appelés")

    class Meta:
        template_name = "costing/tables/_base.html"
        attrs = TABLE_ATTRS
        empty_text = _("Aucun acompte prévu restant à appeler.")

    def render_amount(self, value):
        return euros(value)
