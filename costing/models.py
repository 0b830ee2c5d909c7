"""Cost bases, unit costs and usage records: the stored, auditable inputs of the engine."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from conventions.models import Convention
from mutualisation.models import Organisation, Service, UnitType, UnitWeight


class SourceDocument(models.TextChoices):
    CA = "CA", _("Compte administratif")
    CFU = "CFU", _("Compte financier unique")


class ReferenceBasis(models.TextChoices):
    FORECAST = "FORECAST", _("Unités prévues pour l'année")
    OBSERVED = "OBSERVED", _("Unités constatées d'une année de référence")


class CostCategory(models.TextChoices):
    PERSONNEL = "PERSONNEL", _("Charges de personnel")
    SUPPLIES = "SUPPLIES", _("Fournitures")
    ASSET_RENEWAL = "ASSET_RENEWAL", _("Renouvellement des biens")
    SERVICE_CONTRACTS = "SERVICE_CONTRACTS", _("Contrats de services rattachés")
    OTHER_LINKED = "OTHER_LINKED", _("Autre charge strictement liée au service")
    OVERHEAD = "OVERHEAD", _("Frais de structure")


NEEDS_JUSTIFICATION = (CostCategory.OTHER_LINKED, CostCategory.OVERHEAD)


class CostBase(models.Model):
    """The operating cost of a service for year N, from the latest accounts adjusted by BP N."""

    service = models.ForeignKey(
        Service, verbose_name=_("service"), on_delete=models.PROTECT, related_name="cost_bases"
    )
    year = models.PositiveSmallIntegerField(_("année N"))
    source = models.CharField(_("document source"), max_length=3, choices=SourceDocument.choices)
    source_year = models.PositiveSmallIntegerField(_("exercice du document source"))
    reference_units = models.DecimalField(_("unités de référence"), max_digits=14, decimal_places=3)
    reference_basis = models.CharField(
        _("nature des unités de référence"), max_length=8, choices=ReferenceBasis.choices
    )
    reference_year = models.PositiveSmallIntegerField(
        _("année de référence des unités"), null=True, blank=True
    )
    notes = models.TextField(_("observations"), blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("base de coûts")
        verbose_name_plural = _("bases de coûts")
        ordering = ["-year", "service__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "year"],
                name="one_cost_base_per_service_and_year",
                violation_error_message=_(
                    "Une base de coûts existe déjà pour ce service et cette année."
                ),
            ),
            models.CheckConstraint(
                condition=Q(reference_units__gt=0),
                name="reference_units_positive",
                violation_error_message=_("Les unités de référence doivent être positives."),
            ),
            models.CheckConstraint(
                condition=Q(source_year__lt=F("year")),
                name="cost_base_from_past_accounts",
                violation_error_message=_("Les comptes utilisés précèdent l'année N."),
            ),
            models.CheckConstraint(
                condition=~Q(reference_basis=ReferenceBasis.OBSERVED)
                | Q(reference_year__isnull=False),
                name="observed_units_name_their_year",
                violation_error_message=_("Des unités constatées nomment leur année de référence."),
            ),
        ]

    def __str__(self):
        return _("Base de coûts %(year)s — %(service)s") % {
            "year": self.year,
            "service": self.service,
        }


class CostLine(models.Model):
    cost_base = models.ForeignKey(
        CostBase, verbose_name=_("base de coûts"), on_delete=models.CASCADE, related_name="lines"
    )
    label = models.CharField(_("libellé"), max_length=200)
    category = models.CharField(_("catégorie"), max_length=20, choices=CostCategory.choices)
    account = models.CharField(_("compte (M57)"), max_length=12, blank=True)
    accounts_amount = models.DecimalField(
        _("montant au compte (€)"), max_digits=14, decimal_places=2
    )
    budget_adjustment = models.DecimalField(
        _("ajustement au budget primitif N (€)"), max_digits=14, decimal_places=2, default=0
    )
    eligible = models.BooleanField(_("éligible"), default=True)
    justification = models.TextField(_("justification"), blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("ligne de coût")
        verbose_name_plural = _("lignes de coût")
        ordering = ["cost_base", "category", "label"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(category__in=NEEDS_JUSTIFICATION) | ~Q(justification=""),
                name="other_and_overhead_lines_are_justified",
                violation_error_message=_(
                    "Une autre charge ou des frais de structure doivent être justifiés (lien strict avec le service)."
                ),
            ),
        ]

    def __str__(self):
        return self.label


class UnitCost(models.Model):
    """The unit cost of a service for a year: computed from its cost base (trace stored), or
    provisional by indexation until the notified one exists."""

    service = models.ForeignKey(
        Service, verbose_name=_("service"), on_delete=models.PROTECT, related_name="unit_costs"
    )
    year = models.PositiveSmallIntegerField(_("année"))
    amount = models.DecimalField(_("coût unitaire (€)"), max_digits=12, decimal_places=2)
    is_provisional = models.BooleanField(_("provisoire"), default=False)
    eligible_cost = models.DecimalField(
        _("coût éligible (€)"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    reference_units = models.DecimalField(
        _("unités de référence"), max_digits=14, decimal_places=3, null=True, blank=True
    )
    trace = models.JSONField(_("trace du calcul"), default=dict, blank=True)
    notification_deadline = models.DateField(_("date limite de notification"))
    notified_on = models.DateField(_("notifié le"), null=True, blank=True)
    computed_at = models.DateTimeField(_("calculé le"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("coût unitaire")
        verbose_name_plural = _("coûts unitaires")
        ordering = ["-year", "service__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "year"], name="one_unit_cost_per_service_and_year"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0),
                name="unit_cost_not_negative",
                violation_error_message=_("Un coût unitaire ne peut être négatif."),
            ),
        ]

    def __str__(self):
        return _("Coût unitaire %(year)s — %(service)s") % {
            "year": self.year,
            "service": self.service,
        }


class UsageSource(models.TextChoices):
    GRID = "GRID", _("Saisie dans la grille")
    IMPORT = "IMPORT", _("Import de fichier")
    MANUAL = "MANUAL", _("Saisie unitaire")


class UsageRecord(models.Model):
    """One line of the état des recours: a use of a service by a beneficiary, in units."""

    convention = models.ForeignKey(
        Convention, verbose_name=_("convention"), on_delete=models.PROTECT, related_name="usages"
    )
    beneficiary = models.ForeignKey(
        Organisation,
        verbose_name=_("bénéficiaire"),
        on_delete=models.PROTECT,
        related_name="usages",
    )
    service = models.ForeignKey(
        Service, verbose_name=_("service"), on_delete=models.PROTECT, related_name="usages"
    )
    unit_type = models.ForeignKey(
        UnitType,
        verbose_name=_("unité de fonctionnement"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    weight = models.ForeignKey(
        UnitWeight,
        verbose_name=_("pondération"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    period_start = models.DateField(_("début de période"))
    period_end = models.DateField(_("fin de période"))
    quantity = models.DecimalField(_("quantité"), max_digits=12, decimal_places=3)
    units = models.DecimalField(
        _("unités (pondérées)"), max_digits=14, decimal_places=3, editable=False
    )
    reference = models.CharField(
        _("référence"), max_length=80, blank=True, help_text=_("Ex. : numéro de dossier.")
    )
    source = models.CharField(_("source"), max_length=6, choices=UsageSource.choices)
    recorded_at = models.DateTimeField(_("enregistré le"), auto_now=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("enregistré par"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("recours au service")
        verbose_name_plural = _("état des recours")
        ordering = ["period_start", "beneficiary__name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=0) & Q(units__gte=0),
                name="usage_not_negative",
                violation_error_message=_("Une quantité ne peut être négative."),
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")),
                name="usage_period_ordered",
                violation_error_message=_("La fin de période précède son début."),
            ),
        ]
        indexes = [models.Index(fields=["convention", "period_start"])]

    def __str__(self):
        return f"{self.beneficiary} — {self.service} — {self.period_start:%m/%Y} : {self.units}"
