"""Cost bases, unit costs and usage records: the stored, auditable inputs of the engine."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from conventions.models import Convention
from costing import engine
from mutualisation.models import Organisation, Service, UnitType, UnitWeight
from mutualisation.validators import validate_plausible_date


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
ACCOUNT_FORMAT_MESSAGE = _(
    "Le compte M57 est un nombre de 2 à 10 chiffres, sans espace ni point (ex. : 6411)."
)

# The compte financier unique replaces the compte administratif from this exercise on.
CFU_FIRST_EXERCISE = engine.CFU_FIRST_EXERCISE


class CostBaseQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The territory staff see the cost bases of their territories' services; everyone
        sees those of their own organisation's services and of the services of the conventions
        they are party to (the unit cost they pay), never another organisation's detailed cost
        lines otherwise. Superusers see all."""
        from conventions.models import ConventionService
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        if not (scope.organisation_ids or scope.territory_ids):
            return self.none()
        # (a line of another territory's service on a convention gives no sight of its costs)
        used = ConventionService.objects.filter(
            convention__in=Convention.objects.visible_to(user),
            service__territory_id=F("convention__territory_id"),
        ).values("service_id")
        return self.filter(
            Q(service__territory_id__in=scope.territory_ids)
            | Q(service__provider_id__in=scope.organisation_ids)
            | Q(service_id__in=used)
        )

    def managed_by(self, user):
        """The cost bases the user's territories manage: those of their services."""
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        return self.filter(service__territory_id__in=scope.territory_ids)


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
    forecast_cost = models.DecimalField(
        _("coût prévisionnel de l'année N (€)"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "Coût du service prévu au budget de l'année, s'il diffère du coût éligible de la "
            "base ; base des acomptes et de l'imputation sur l'AC d'un service réparti par clé."
        ),
    )
    actual_cost = models.DecimalField(
        _("coût constaté de l'année N (€)"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "Coût réellement supporté, une fois l'exercice N arrêté ; à défaut, le coût éligible "
            "de la base est réparti."
        ),
    )
    notes = models.TextField(_("observations"), blank=True)
    # Optimistic locking: a form opened on an older version is refused, never overwrites.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)

    history = HistoricalRecords()
    objects = CostBaseQuerySet.as_manager()

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
            models.CheckConstraint(
                condition=~Q(source=SourceDocument.CA) | Q(source_year__lt=CFU_FIRST_EXERCISE),
                name="no_compte_administratif_from_2026",
                violation_error_message=_(
                    "Le compte financier unique remplace le compte administratif à partir de "
                    "l'exercice 2026 : un CA ne peut porter sur un exercice 2026 ou postérieur."
                ),
            ),
            models.CheckConstraint(
                condition=(Q(forecast_cost__isnull=True) | Q(forecast_cost__gte=0))
                & (Q(actual_cost__isnull=True) | Q(actual_cost__gte=0)),
                name="cost_base_costs_not_negative",
                violation_error_message=_("Un coût prévisionnel ou constaté ne peut être négatif."),
            ),
        ]

    def __str__(self):
        return gettext("Base de coûts %(year)s — %(service)s") % {
            "year": self.year,
            "service": self.service,
        }

    def clean(self):
        super().clean()
        if (
            self.source == SourceDocument.CA
            and self.source_year is not None
            and self.source_year >= CFU_FIRST_EXERCISE
        ):
            raise ValidationError(
                {
                    "source": _(
                        "Le compte financier unique remplace le compte administratif à partir de "
                        "l'exercice %(first)s : pour l'exercice %(year)s, la source est le CFU."
                    )
                    % {"first": CFU_FIRST_EXERCISE, "year": self.source_year}
                }
            )


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
            models.CheckConstraint(
                condition=Q(eligible=False)
                | (~Q(account__startswith="2") & ~Q(account__startswith="66")),
                name="eligible_line_not_investment_nor_financial",
                violation_error_message=_(
                    "Une dépense d'investissement (classe 2) ou une charge financière (66) ne peut "
                    "être une charge éligible au coût de fonctionnement."
                ),
            ),
        ]

    def __str__(self):
        return self.label

    def clean(self):
        """The M57 account: digits; never investment (class 2) nor financial charges (66) when
        eligible; outside the operating expenses (class 6), eligible only with a justification."""
        super().clean()
        account = (self.account or "").strip()
        self.account = account
        if not account:
            return  # required by the form; older lines without an account are a finding
        if not engine.is_account_number(account):
            raise ValidationError({"account": ACCOUNT_FORMAT_MESSAGE})
        if not self.eligible:
            return
        if engine.is_investment_account(account):
            raise ValidationError(
                {
                    "account": _(
                        "Le compte %(account)s est un compte d'investissement (classe 2) : cette "
                        "dépense ne peut être une charge éligible au coût de fonctionnement."
                    )
                    % {"account": account}
                }
            )
        if engine.is_financial_charge_account(account):
            raise ValidationError(
                {
                    "account": _(
                        "Le compte %(account)s est une charge financière (66) : elle ne peut être "
                        "une charge éligible au coût de fonctionnement."
                    )
                    % {"account": account}
                }
            )
        if engine.is_outside_operating_expenses(account) and not self.justification.strip():
            raise ValidationError(
                {
                    "justification": _(
                        "Le compte %(account)s est hors des charges de fonctionnement (classe 6) : "
                        "justifiez le lien strict de cette charge avec le service, ou ne la "
                        "retenez pas."
                    )
                    % {"account": account}
                }
            )


class UnitCostQuerySet(models.QuerySet):
    def current(self):
        """Only the current unit cost of each (service, year): its highest version. A notified
        version is frozen; a correction is a new version that supersedes it."""
        return self.filter(
            ~models.Exists(
                UnitCost.objects.filter(
                    service=models.OuterRef("service"),
                    year=models.OuterRef("year"),
                    version__gt=models.OuterRef("version"),
                )
            )
        )


class UnitCost(models.Model):
    """The unit cost of a service for a year: computed from its cost base (trace stored), or
    provisional by indexation until the notified one exists.

    Versioned: once notified a version never changes (database triggers, migration 0005); a
    correction is version n + 1, citing the version it supersedes and its reason, notified on
    its own date. ``UnitCost.objects.current()`` keeps the current version of each service and
    year."""

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
    notification_deadline = models.DateField(
        _("date limite de notification"), validators=[validate_plausible_date]
    )
    notified_on = models.DateField(
        _("notifié le"), null=True, blank=True, validators=[validate_plausible_date]
    )
    computed_at = models.DateTimeField(_("calculé le"), default=timezone.now)
    version = models.PositiveSmallIntegerField(_("version"), default=1)
    supersedes = models.OneToOneField(
        "self",
        verbose_name=_("corrige la version"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
    )
    correction_reason = models.TextField(_("motif de la correction"), blank=True)

    objects = UnitCostQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("coût unitaire")
        verbose_name_plural = _("coûts unitaires")
        ordering = ["-year", "service__name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "year", "version"],
                name="one_unit_cost_per_service_year_and_version",
            ),
            models.CheckConstraint(
                condition=Q(version=1) | (Q(supersedes__isnull=False) & ~Q(correction_reason="")),
                name="unit_cost_correction_cites_its_reason",
                violation_error_message=_(
                    "Une version corrigée cite la version qu'elle corrige et son motif."
                ),
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0),
                name="unit_cost_not_negative",
                violation_error_message=_("Un coût unitaire ne peut être négatif."),
            ),
        ]

    def __str__(self):
        return gettext("Coût unitaire %(year)s — %(service)s") % {
            "year": self.year,
            "service": self.service,
        }

    @property
    def is_notified(self) -> bool:
        """Notified to the beneficiaries: frozen, only a new version may correct it."""
        return self.notified_on is not None


class UsageSource(models.TextChoices):
    GRID = "GRID", _("Saisie dans la grille")
    IMPORT = "IMPORT", _("Import de fichier")
    MANUAL = "MANUAL", _("Saisie unitaire")
    ADJUSTMENT = "ADJUST", _("Ajustement (correction justifiée)")
    API = "API", _("Envoi par l'API (outil de comptage)")


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
    period_start = models.DateField(_("début de période"), validators=[validate_plausible_date])
    period_end = models.DateField(_("fin de période"), validators=[validate_plausible_date])
    quantity = models.DecimalField(_("quantité"), max_digits=12, decimal_places=3)
    units = models.DecimalField(
        _("unités (pondérées)"), max_digits=14, decimal_places=3, editable=False
    )
    reference = models.CharField(
        _("référence"), max_length=80, blank=True, help_text=_("Ex. : numéro de dossier.")
    )
    external_reference = models.CharField(
        _("référence externe"),
        max_length=80,
        blank=True,
        help_text=_(
            "Identifiant du recours dans l'outil qui l'a compté (billetterie, instruction ADS), "
            "unique par convention : un recours envoyé deux fois n'est enregistré qu'une fois. "
            "Vide pour une saisie à l'écran."
        ),
    )
    source = models.CharField(_("source"), max_length=6, choices=UsageSource.choices)
    reason = models.TextField(
        _("motif de l'ajustement"),
        blank=True,
        help_text=_("Obligatoire pour un ajustement (ex. remarque de la commune)."),
    )
    recorded_at = models.DateTimeField(_("enregistré le"), auto_now=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("enregistré par"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    imported_from = models.ForeignKey(
        "UsageImport",
        verbose_name=_("importé du fichier"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="records",
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("recours au service")
        verbose_name_plural = _("état des recours")
        ordering = ["period_start", "beneficiary__name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(quantity__gte=0) & Q(units__gte=0)) | Q(source=UsageSource.ADJUSTMENT),
                name="usage_not_negative_unless_adjustment",
                violation_error_message=_(
                    "Une quantité ne peut être négative, sauf pour un ajustement justifié."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(source=UsageSource.ADJUSTMENT) | ~Q(reason=""),
                name="adjustment_states_its_reason",
                violation_error_message=_("Un ajustement indique son motif."),
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")),
                name="usage_period_ordered",
                violation_error_message=_("La fin de période précède son début."),
            ),
            models.UniqueConstraint(
                fields=["convention", "external_reference"],
                condition=~Q(external_reference=""),
                name="usage_external_reference_once_per_convention",
                violation_error_message=_(
                    "Cette référence externe est déjà enregistrée pour cette convention."
                ),
            ),
        ]
        indexes = [models.Index(fields=["convention", "period_start"])]

    def __str__(self):
        return f"{self.beneficiary} — {self.service} — {self.period_start:%m/%Y} : {self.units}"


class FlowType(models.TextChoices):
    SERVICE_REIMBURSEMENT = (
        "SERVICE",
        _("Remboursement de frais (mise à disposition, service commun)"),
    )
    STAFF = "STAFF", _("Mise à disposition de personnel")
    COMPENSATION = "AC", _("Attribution de compensation")


class Side(models.TextChoices):
    PROVIDER = "PROVIDER", _("Prestataire (recette)")
    BENEFICIARY = "BENEFICIARY", _("Bénéficiaire (dépense)")


class FlowDirection(models.TextChoices):
    EPCI_PROVIDES = "EPCI_PROVIDES", _("L'EPCI rend le service à une commune")
    COMMUNE_PROVIDES = "COMMUNE_PROVIDES", _("Une commune rend le service à l'EPCI")


class AccountMapping(models.Model):
    """Budget accounts of each side of a flow, per nomenclature version (reference data: the M57
    sub-accounts are unconfirmed [U] and stay editable in the admin)."""

    nomenclature = models.CharField(_("version de la nomenclature"), max_length=20)
    flow = models.CharField(_("nature du flux"), max_length=8, choices=FlowType.choices)
    direction = models.CharField(_("sens"), max_length=16, choices=FlowDirection.choices)
    side = models.CharField(_("côté"), max_length=12, choices=Side.choices)
    account = models.CharField(_("compte"), max_length=12)
    label = models.CharField(_("libellé"), max_length=200)
    is_current = models.BooleanField(
        _("version en vigueur"), default=True, help_text=_("Utilisée pour les nouveaux états.")
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("imputation comptable")
        verbose_name_plural = _("imputations comptables")
        ordering = ["nomenclature", "flow", "direction", "side"]
        constraints = [
            models.UniqueConstraint(
                fields=["nomenclature", "flow", "direction", "side"],
                name="one_account_per_flow_side",
            ),
        ]

    def __str__(self):
        return f"{self.account} — {self.label} ({self.nomenclature})"


class StatementStatus(models.TextChoices):
    DRAFT = "DRAFT", _("Projet")
    ISSUED = "ISSUED", _("Émis")


class BalanceChannel(models.TextChoices):
    """Where a statement's year-end balance goes (engine.CHANNELS)."""

    TITRE = engine.CHANNEL_TITRE, _("Titre de recettes émis par le créancier")
    MANDAT = engine.CHANNEL_MANDAT, _("Remboursement au débiteur (mandat ou réduction de titre)")
    AC_NEXT_YEAR = (
        engine.CHANNEL_AC_NEXT_YEAR,
        _("Reporté sur l'attribution de compensation de l'année suivante"),
    )
    NONE = engine.CHANNEL_NONE, _("Rien à régler")


class StatementQuerySet(models.QuerySet):
    def with_state(self):
        """Annotate ``is_cancelled``: an issued statement cites this one as cancelled."""
        return self.annotate(
            is_cancelled=models.Exists(
                Statement.objects.filter(
                    cancels=models.OuterRef("pk"), status=StatementStatus.ISSUED
                )
            )
        )

    def visible_to(self, user):
        """Statements of the conventions of the user's territories, and those their own
        organisation owes or is owed (a commune reader's only ones). Superusers see all."""
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        return self.filter(
            Q(convention__territory_id__in=scope.territory_ids)
            | Q(payer_id__in=scope.organisation_ids)
            | Q(payee_id__in=scope.organisation_ids)
        )


class Statement(models.Model):
    """État annuel de remboursement of one convention, payer and year.

    A draft is recomputed on demand. Issuing freezes it: number, snapshot of every input and line,
    PDF bytes and their SHA-256. The database itself refuses any change to an issued statement or
    its lines (triggers, migration 0003), a REPLACE or TRUNCATE that would remove one, and any
    issued statement not written by the issue path (migration 0006); a correction is a new
    statement that cites the one it cancels.
    """

    year = models.PositiveSmallIntegerField(_("exercice"))
    convention = models.ForeignKey(
        Convention,
        verbose_name=_("convention"),
        on_delete=models.PROTECT,
        related_name="statements",
    )
    payer = models.ForeignKey(
        Organisation,
        verbose_name=_("débiteur"),
        on_delete=models.PROTECT,
        related_name="statements_owed",
    )
    payee = models.ForeignKey(
        Organisation,
        verbose_name=_("créancier"),
        on_delete=models.PROTECT,
        related_name="statements_due",
    )
    status = models.CharField(
        _("statut"), max_length=6, choices=StatementStatus.choices, default=StatementStatus.DRAFT
    )
    number = models.CharField(_("numéro"), max_length=20, unique=True, null=True, blank=True)
    total = models.DecimalField(_("total (€)"), max_digits=14, decimal_places=2, default=0)
    instalments_called = models.DecimalField(
        _("acomptes appelés (€)"), max_digits=14, decimal_places=2, default=0
    )
    balance = models.DecimalField(_("solde (€)"), max_digits=14, decimal_places=2, default=0)
    ac_deduction = models.DecimalField(
        _("imputé sur l'attribution de compensation (€)"),
        max_digits=14,
        decimal_places=2,
        default=0,
    )
    settlement_mode = models.CharField(_("modalité de règlement"), max_length=16, blank=True)
    balance_channel = models.CharField(
        _("règlement du solde"), max_length=16, choices=BalanceChannel.choices, blank=True
    )
    approved_at = models.DateTimeField(_("approuvé par le débiteur le"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approuvé par"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    snapshot = models.JSONField(_("données figées"), default=dict, blank=True)
    pdf = models.BinaryField(_("PDF"), null=True, blank=True, editable=False)
    pdf_sha256 = models.CharField(_("empreinte SHA-256 du PDF"), max_length=64, blank=True)
    review_until = models.DateField(
        _("remarques possibles jusqu'au"),
        null=True,
        blank=True,
        validators=[validate_plausible_date],
    )
    computed_at = models.DateTimeField(_("calculé le"), null=True, blank=True)
    issued_at = models.DateTimeField(_("émis le"), null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("émis par"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    cancels = models.OneToOneField(
        "self",
        verbose_name=_("annule et remplace"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cancelled_by",
    )
    correction_reason = models.TextField(_("motif de la correction"), blank=True)

    objects = StatementQuerySet.as_manager()

    class Meta:
        verbose_name = _("état annuel de remboursement")
        verbose_name_plural = _("états annuels de remboursement")
        ordering = ["-year", "number", "convention__reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["convention", "payer", "year"],
                condition=Q(status="DRAFT"),
                name="one_draft_statement_per_convention_payer_year",
            ),
            models.CheckConstraint(
                condition=Q(status="DRAFT")
                | (~Q(number=None) & ~Q(pdf_sha256="") & ~Q(issued_at=None)),
                name="issued_statement_is_complete",
            ),
            models.CheckConstraint(
                condition=Q(cancels__isnull=True) | ~Q(correction_reason=""),
                name="correction_states_its_reason",
                violation_error_message=_("Une correction indique son motif."),
            ),
        ]

    def __str__(self):
        return self.number or gettext("Projet %(year)s — %(convention)s — %(payer)s") % {
            "year": self.year,
            "convention": self.convention.reference,
            "payer": self.payer,
        }

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("costing:statement", args=[self.pk])

    @property
    def is_issued(self) -> bool:
        return self.status == StatementStatus.ISSUED


class StatementLine(models.Model):
    statement = models.ForeignKey(
        Statement, verbose_name=_("état"), on_delete=models.PROTECT, related_name="lines"
    )
    position = models.PositiveSmallIntegerField(_("rang"))
    service = models.ForeignKey(
        Service, verbose_name=_("service"), on_delete=models.PROTECT, related_name="+"
    )
    period_start = models.DateField(_("début de période"), validators=[validate_plausible_date])
    period_end = models.DateField(_("fin de période"), validators=[validate_plausible_date])
    basis = models.CharField(_("base"), max_length=12)
    units = models.DecimalField(_("unités"), max_digits=14, decimal_places=3)
    unit_cost = models.DecimalField(
        _("coût unitaire (€)"), max_digits=12, decimal_places=2, null=True
    )
    unit_cost_notified_on = models.DateField(
        _("coût unitaire notifié le"), null=True, blank=True, validators=[validate_plausible_date]
    )
    key_weight = models.DecimalField(_("pondération"), max_digits=14, decimal_places=3, null=True)
    key_total = models.DecimalField(
        _("total des pondérations"), max_digits=16, decimal_places=3, null=True
    )
    shared_cost = models.DecimalField(
        _("coût partagé (€)"), max_digits=14, decimal_places=2, null=True
    )
    amount = models.DecimalField(_("montant (€)"), max_digits=14, decimal_places=2)
    revenue_account = models.CharField(_("compte de recette (prestataire)"), max_length=12)
    expense_account = models.CharField(_("compte de dépense (bénéficiaire)"), max_length=12)
    usage_count = models.PositiveIntegerField(_("nombre de recours"), default=0)

    class Meta:
        verbose_name = _("ligne d'état")
        verbose_name_plural = _("lignes d'état")
        ordering = ["statement", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["statement", "position"], name="statement_line_position_unique"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="statement_line_amount_not_negative"
            ),
        ]

    def __str__(self):
        return f"{self.statement} #{self.position}"


class StatementRemark(models.Model):
    """A commune's remark on a draft statement, within its review window."""

    statement = models.ForeignKey(
        Statement, verbose_name=_("état"), on_delete=models.PROTECT, related_name="remarks"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("auteur"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    text = models.TextField(_("remarque"))
    created_at = models.DateTimeField(_("le"), auto_now_add=True)
    # Finance's answer, and whether the remark is resolved (a draft with an open remark is not
    # issued: statements.issue_refusals). Written by statements.remark_answer only.
    answer = models.TextField(_("réponse"), blank=True)
    answered_at = models.DateTimeField(_("répondu le"), null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("répondu par"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(_("traitée le"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("traitée par"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("remarque sur un état")
        verbose_name_plural = _("remarques sur les états")
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="remark_is_not_empty"),
            models.CheckConstraint(
                condition=Q(answer="", answered_at__isnull=True, answered_by__isnull=True)
                | (~Q(answer="") & Q(answered_at__isnull=False, answered_by__isnull=False)),
                name="remark_answer_is_complete",
                violation_error_message=_("Une réponse indique son auteur et sa date."),
            ),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True, resolved_by__isnull=True)
                | (Q(resolved_at__isnull=False, resolved_by__isnull=False) & ~Q(answer="")),
                name="resolved_remark_is_answered",
                violation_error_message=_(
                    "Une remarque traitée porte une réponse, son auteur et sa date."
                ),
            ),
        ]

    def __str__(self):
        return self.text[:60]

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None


class InstalmentStatus(models.TextChoices):
    CALLED = "CALLED", _("Appelé")
    TITRE_ISSUED = "TITRE_EMIS", _("Titre émis")
    PAID = "PAID", _("Encaissé")
    CANCELLED = "CANCELLED", _("Annulé")


class InstalmentQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The acomptes of the conventions of the user's territories, and those their own
        organisation owes or is owed (a commune reader's only ones). Superusers see all."""
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        return self.filter(
            Q(convention__territory_id__in=scope.territory_ids)
            | Q(payer_id__in=scope.organisation_ids)
            | Q(payee_id__in=scope.organisation_ids)
        )


class Instalment(models.Model):
    """An acompte actually called from a payer (D5211-16: periodicity of at most a year): its
    due date, amount, titre number and status. The year-end regularisation uses what was called
    here, never a recomputation."""

    convention = models.ForeignKey(
        Convention,
        verbose_name=_("convention"),
        on_delete=models.PROTECT,
        related_name="instalments",
    )
    payer = models.ForeignKey(
        Organisation,
        verbose_name=_("débiteur"),
        on_delete=models.PROTECT,
        related_name="instalments_owed",
    )
    payee = models.ForeignKey(
        Organisation,
        verbose_name=_("créancier"),
        on_delete=models.PROTECT,
        related_name="instalments_due",
    )
    year = models.PositiveSmallIntegerField(_("exercice"))
    rank = models.PositiveSmallIntegerField(_("rang"))
    due_date = models.DateField(_("échéance"), validators=[validate_plausible_date])
    amount = models.DecimalField(_("montant (€)"), max_digits=14, decimal_places=2)
    status = models.CharField(
        _("statut"),
        max_length=10,
        choices=InstalmentStatus.choices,
        default=InstalmentStatus.CALLED,
    )
    titre_number = models.CharField(_("n° de titre"), max_length=40, blank=True)
    paid_on = models.DateField(
        _("encaissé le"), null=True, blank=True, validators=[validate_plausible_date]
    )
    called_at = models.DateTimeField(_("appelé le"), default=timezone.now)

    history = HistoricalRecords()
    objects = InstalmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("acompte")
        verbose_name_plural = _("acomptes")
        ordering = ["year", "convention__reference", "payer__name", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["convention", "payer", "year", "rank"],
                name="one_instalment_per_rank",
                violation_error_message=_("Cet acompte est déjà appelé."),
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0),
                name="instalment_amount_positive",
                violation_error_message=_("Un acompte est d'un montant positif."),
            ),
            models.CheckConstraint(
                condition=~Q(status=InstalmentStatus.TITRE_ISSUED) | ~Q(titre_number=""),
                name="instalment_titre_has_its_number",
                violation_error_message=_("Indiquez le numéro du titre émis."),
            ),
            models.CheckConstraint(
                condition=~Q(status=InstalmentStatus.PAID) | Q(paid_on__isnull=False),
                name="instalment_paid_has_its_date",
                violation_error_message=_("Indiquez la date d'encaissement."),
            ),
        ]

    def __str__(self):
        return gettext("Acompte %(rank)s/%(year)s — %(convention)s — %(payer)s") % {
            "rank": self.rank,
            "year": self.year,
            "convention": self.convention.reference,
            "payer": self.payer,
        }


class StatementCounter(models.Model):
    """Last statement number given per prefix and year, incremented under a row lock (no gaps).
    The prefix is the territory's own (EA for the one EPCI without): one series per territory."""

    prefix = models.CharField(_("préfixe"), max_length=8, default="EA")
    year = models.PositiveSmallIntegerField(_("année"))
    last_number = models.PositiveIntegerField(_("dernier numéro"), default=0)

    class Meta:
        verbose_name = _("compteur d'états")
        verbose_name_plural = _("compteurs d'états")
        constraints = [
            models.UniqueConstraint(fields=["prefix", "year"], name="one_statement_counter"),
        ]

    def __str__(self):
        return f"{self.prefix}-{self.year} : {self.last_number}"


class BatchJobQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The batches of the user's territories (all for a superuser)."""
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        return self.filter(territory_id__in=scope.territory_ids)


class BatchJob(models.Model):
    """A batch of a year's statements (issue and/or export as a ZIP), run as a Celery task."""

    class Action(models.TextChoices):
        EXPORT = "EXPORT", _("Exporter")
        ISSUE_AND_EXPORT = "ISSUE", _("Émettre puis exporter")

    class JobStatus(models.TextChoices):
        PENDING = "PENDING", _("En attente")
        RUNNING = "RUNNING", _("En cours")
        DONE = "DONE", _("Terminé")
        FAILED = "FAILED", _("Échec")

    year = models.PositiveSmallIntegerField(_("exercice"))
    territory = models.ForeignKey(
        "mutualisation.Organisation",
        verbose_name=_("territoire (EPCI)"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Le lot porte sur les conventions de ce territoire ; vide : tous."),
    )
    action = models.CharField(_("action"), max_length=6, choices=Action.choices)
    status = models.CharField(
        _("statut"), max_length=8, choices=JobStatus.choices, default=JobStatus.PENDING
    )
    total = models.PositiveIntegerField(_("états à traiter"), default=0)
    done = models.PositiveIntegerField(_("états traités"), default=0)
    # What an issue batch issued: its drafts still within their review window (or otherwise
    # refused) are exported as drafts, and « Terminé » must not read as if they were issued.
    issued = models.PositiveIntegerField(_("états émis par le lot"), default=0)
    # A file in private storage (never served as /media/: only through the batch's download,
    # which checks the permission), never a database value: a year's ZIP can exceed 1 GB.
    archive = models.FileField(
        _("archive ZIP"), upload_to="batches/%Y/%m/", max_length=200, blank=True, editable=False
    )
    # The batch is rendered in chunks that workers share: ``plan`` says what each chunk renders
    # (and which number each draft to issue will take), ``chunks_done`` which chunks are over.
    plan = models.JSONField(_("plan du lot"), default=dict, blank=True, editable=False)
    chunks_total = models.PositiveIntegerField(_("parts du lot"), default=0)
    chunks_done = models.JSONField(_("parts terminées"), default=list, blank=True, editable=False)
    error = models.TextField(_("erreur"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("lancé par"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("lancé le"), auto_now_add=True)
    finished_at = models.DateTimeField(_("terminé le"), null=True, blank=True)

    objects = BatchJobQuerySet.as_manager()

    class Meta:
        verbose_name = _("traitement par lot")
        verbose_name_plural = _("traitements par lot")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_action_display()} {self.year} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if not self.total:  # not planned yet (0 %), or a year without any statement
            return 100 if self.status == self.JobStatus.DONE else 0
        return round(100 * self.done / self.total)


class UsageImport(models.Model):
    """A usage file dropped for import: kept (private storage, never in the session) from its
    check to its import, run in the request when small and as a Celery job when large, with
    its progress. Its fingerprint (the rows as read, whatever the file's format or order)
    refuses a second import of the same rows."""

    class ImportStatus(models.TextChoices):
        CHECKING = "CHECKING", _("Vérification en cours")
        CHECKED = "CHECKED", _("Vérifié, à confirmer")
        REFUSED = "REFUSED", _("Refusé")
        IMPORTING = "IMPORTING", _("Import en cours")
        IMPORTED = "IMPORTED", _("Importé")

    file = models.FileField(_("fichier"), upload_to="imports/%Y/%m/", max_length=200)
    filename = models.CharField(_("nom du fichier"), max_length=200)
    sha256 = models.CharField(_("empreinte du fichier (SHA-256)"), max_length=64)
    fingerprint = models.CharField(
        _("empreinte des lignes"), max_length=64, blank=True, editable=False
    )
    replace = models.BooleanField(_("remplacer les recours importés"), default=False)
    status = models.CharField(
        _("statut"), max_length=9, choices=ImportStatus.choices, default=ImportStatus.CHECKING
    )
    rows = models.PositiveIntegerField(_("lignes"), default=0)
    done = models.PositiveIntegerField(_("lignes traitées"), default=0)
    replaced = models.PositiveIntegerField(_("recours remplacés"), default=0)
    errors = models.JSONField(_("erreurs"), default=list, blank=True, editable=False)
    error_count = models.PositiveIntegerField(_("nombre d'erreurs"), default=0)
    preview = models.JSONField(_("aperçu"), default=list, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("déposé par"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("déposé le"), auto_now_add=True)
    imported_at = models.DateTimeField(_("importé le"), null=True, blank=True)

    class Meta:
        verbose_name = _("import de recours")
        verbose_name_plural = _("imports de recours")
        ordering = ["-created_at"]
        constraints = [
            # Two imports adding the same rows at once: the database keeps one.
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=Q(status="IMPORTED", replace=False),
                name="same_rows_added_once",
                violation_error_message=_("Ces lignes ont déjà été importées."),
            ),
        ]

    def __str__(self):
        return f"{self.filename} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        return 100 if not self.rows else min(100, round(100 * self.done / self.rows))

    @property
    def running(self) -> bool:
        return self.status in (self.ImportStatus.CHECKING, self.ImportStatus.IMPORTING)


class ReimbursementResult(models.Model):
    """The year's computation of one convention as the pages show it (issue 11): its lines,
    its managing organisation's own share, its settlements and findings, stored with the
    fingerprint of the inputs it was computed from. A page reads it while the fingerprint holds
    and recomputes the convention when its inputs changed (or on « Recalculer »). Statements
    never read it: preparing and issuing always compute afresh."""

    convention = models.ForeignKey(
        Convention, verbose_name=_("convention"), on_delete=models.CASCADE, related_name="+"
    )
    year = models.PositiveSmallIntegerField(_("exercice"))
    fingerprint = models.CharField(_("empreinte des données"), max_length=64)
    computed_at = models.DateTimeField(_("calculé le"))
    total = models.DecimalField(_("total des lignes"), max_digits=16, decimal_places=2)
    line_count = models.PositiveIntegerField(_("nombre de lignes"))
    settlement_count = models.PositiveIntegerField(_("nombre de règlements"))
    # The lines and the settlements, read only for the page of them shown (or the ones a
    # filter selects).
    lines = models.JSONField(_("lignes"))
    settlements = models.JSONField(_("règlements"))
    # What a page sums for any scope without reading them: {"borne", "findings", "positions"
    # (this convention's part of each organisation's position), "direction", "sirens",
    # "by_service"}, amounts as decimal strings (costing.services.result_as_json).
    data = models.JSONField(_("résultat"))

    class Meta:
        verbose_name = _("calcul enregistré d'une convention")
        verbose_name_plural = _("calculs enregistrés des conventions")
        constraints = [
            models.UniqueConstraint(fields=["convention", "year"], name="one_result_per_year"),
        ]

    def __str__(self):
        return f"{self.convention_id} {self.year}"
