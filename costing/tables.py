"""The year's rows, page by page (django-tables2): reimbursement lines, net positions,
settlements, the managing organisations' own shares and the compliance findings. Each table
keeps its own page in the query string (its prefix), the page's filters with it; its rows are
drawn by its template (costing/tables/), the markup of the page before pagination."""

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

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
