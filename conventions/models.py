"""Conventions de mutualisation and what hangs on them: parties, services, versioned terms,
forecasts, deliberations, staff-body opinions, impact sheet, agents, attachments, avenants and
termination. Legal transitions live in the conventions/services package, not here."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from mutualisation.french import of
from mutualisation.models import Organisation, OrganisationKind, Service, UnitType
from mutualisation.validators import validate_plausible_date


class ConventionKind(models.TextChoices):
    MISE_A_DISPOSITION = "MISE_A_DISPOSITION", _("Mise à disposition de services")
    SERVICE_COMMUN = "SERVICE_COMMUN", _("Service commun")
    MISE_EN_COMMUN_BIENS = "MISE_EN_COMMUN_BIENS", _("Mise en commun de biens")
    CONVENTION_GESTION = "CONVENTION_GESTION", _("Convention de gestion")
    PRESTATION = "PRESTATION", _("Prestation de services")
    MAD_AGENT = "MAD_AGENT", _("Mise à disposition individuelle d'agent")


# The articles each kind rests on, recited in the visas of the convention document.
LEGAL_BASIS = {
    ConventionKind.MISE_A_DISPOSITION: (
        "L. 5211-4-1 du code général des collectivités territoriales",
        "D. 5211-16 du code général des collectivités territoriales",
    ),
    ConventionKind.SERVICE_COMMUN: ("L. 5211-4-2 du code général des collectivités territoriales",),
    ConventionKind.MISE_EN_COMMUN_BIENS: (
        "L. 5211-4-3 du code général des collectivités territoriales",
    ),
    ConventionKind.CONVENTION_GESTION: (
        "L. 5215-27 du code général des collectivités territoriales",
        "L. 5217-7 du code général des collectivités territoriales",
    ),
    ConventionKind.PRESTATION: ("L. 5111-1 du code général des collectivités territoriales",),
    ConventionKind.MAD_AGENT: ("code général de la fonction publique (mise à disposition)",),
}


class Status(models.TextChoices):
    DRAFT = "DRAFT", _("Brouillon")
    CONSULTATION = "CONSULTATION", _("En consultation")
    DELIBERATED = "DELIBERATED", _("Délibérée")
    SIGNED = "SIGNED", _("Signée")
    IN_FORCE = "IN_FORCE", _("En vigueur")
    TERMINATED = "TERMINATED", _("Résiliée")
    EXPIRED = "EXPIRED", _("Échue")


# Until deliberated, the convention's text may still change; afterwards only by avenant.
EDITABLE_STATUSES = (Status.DRAFT, Status.CONSULTATION)


class Direction(models.TextChoices):
    ASCENDANTE = "ASCENDANTE", _("ascendante (commune → EPCI, L. 5211-4-1 II)")
    DESCENDANTE = "DESCENDANTE", _("descendante (EPCI → communes, L. 5211-4-1 III)")


class SettlementMode(models.TextChoices):
    TITRE = "TITRE", _("Titre de recettes")
    AC_IMPUTATION = "AC_IMPUTATION", _("Imputation sur l'attribution de compensation")
    MIXED = "MIXED", _("Mixte (imputation sur l'AC et titre de recettes pour le solde)")


class ManagingShare(models.TextChoices):
    """How the organisation managing a service commun takes part in its cost when the cost is
    shared by a key (an EPCI has no population of its own: the terms must say it)."""

    NONE = "NONE", _("Aucune part : tout le coût est réparti entre les autres membres")
    FIXED_PERCENT = (
        "FIXED_PERCENT",
        _("Part fixe (%) du gestionnaire, le reste réparti par la clé entre les autres membres"),
    )
    WEIGHT = "WEIGHT", _("Pondération saisie pour le gestionnaire dans la clé")


class ConventionQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Conventions the user may see: those of the territories whose staff they are, and
        those their organisation is party to (a commune reader's; another territory's convention
        their EPCI takes part in); none without a role. Superusers see all."""
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        if not (scope.organisation_ids or scope.territory_ids):
            return self.none()
        return self.filter(
            Q(territory_id__in=scope.territory_ids)
            | Q(
                pk__in=Party.objects.filter(organisation_id__in=scope.organisation_ids).values(
                    "convention_id"
                )
            )
        )

    def of_territories(self, user):
        """The conventions of the territories whose staff the user is: what year-wide work
        (statements, batches, exports, the dashboard) covers. Superusers: every territory."""
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        return self.filter(territory_id__in=scope.territory_ids)


class Convention(models.Model):
    reference = models.CharField(_("référence"), max_length=20, unique=True, editable=False)
    title = models.CharField(_("intitulé"), max_length=250)
    territory = models.ForeignKey(
        Organisation,
        verbose_name=_("territoire (EPCI)"),
        on_delete=models.PROTECT,
        related_name="territory_conventions",
        limit_choices_to={"kind": OrganisationKind.EPCI},
        help_text=_("L'EPCI dont les agents suivent cette convention ; sa numérotation."),
    )
    kind = models.CharField(_("type de convention"), max_length=24, choices=ConventionKind.choices)
    object = models.TextField(_("objet"))
    preamble = models.TextField(
        _("préambule"),
        blank=True,
        help_text=_(
            "Intérêt de la mutualisation « dans le cadre d'une bonne organisation des services »."
        ),
    )
    status = models.CharField(
        _("statut"), max_length=12, choices=Status.choices, default=Status.DRAFT, editable=False
    )
    managing_organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation gestionnaire du service commun"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="managed_conventions",
    )
    start_date = models.DateField(_("date de prise d'effet"), validators=[validate_plausible_date])
    retroactivity_reason = models.TextField(
        _("motif de l'effet rétroactif des clauses financières"),
        blank=True,
        help_text=_(
            "Seulement si la prise d'effet précède la date à laquelle la convention devient "
            "exécutoire : seules les clauses financières rétroagissent (remboursement du service "
            "déjà rendu), pour le motif indiqué ici."
        ),
    )
    retained_service_basis = models.CharField(
        _("transfert dont la commune a conservé le service"),
        max_length=300,
        blank=True,
        help_text=_(
            "Mise à disposition ascendante (L5211-4-1 II) : l'acte du transfert de compétence "
            "dont la commune a conservé tout ou partie du service, ex. « arrêté préfectoral "
            "n° … du … transférant la compétence voirie »."
        ),
    )
    clect_report_on = models.DateField(
        _("rapport de la CLECT du"),
        null=True,
        blank=True,
        help_text=_(
            "Pour un service commun imputé sur l'attribution de compensation (CGI 1609 nonies C) : "
            "date du rapport de la commission locale d'évaluation des transferts de charges."
        ),
        validators=[validate_plausible_date],
    )
    signature_date = models.DateField(
        _("date de signature"),
        null=True,
        blank=True,
        editable=False,
        validators=[validate_plausible_date],
    )
    # The signed convention becomes enforceable once transmitted to the contrôle de légalité
    # (CGCT L2131-1, L2131-2) and notified to the other parties.
    transmitted_on = models.DateField(
        _("transmise au contrôle de légalité le"),
        null=True,
        blank=True,
        editable=False,
        validators=[validate_plausible_date],
    )
    acknowledgement_number = models.CharField(
        _("n° d'accusé de réception (préfecture)"), max_length=60, blank=True, editable=False
    )
    notified_on = models.DateField(
        _("notifiée aux parties le"),
        null=True,
        blank=True,
        editable=False,
        validators=[validate_plausible_date],
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(_("créée le"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("créée par"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    history = HistoricalRecords()
    objects = ConventionQuerySet.as_manager()

    class Meta:
        verbose_name = _("convention")
        verbose_name_plural = _("conventions")
        ordering = ["-start_date", "-reference"]

    def __str__(self):
        return f"{self.reference} — {self.title}"

    def get_absolute_url(self):
        return reverse("conventions:detail", args=[self.reference])

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE_STATUSES

    @property
    def legal_basis(self) -> tuple[str, ...]:
        return LEGAL_BASIS[ConventionKind(self.kind)]


class PartyRole(models.TextChoices):
    PROVIDER = "PROVIDER", _("Prestataire")
    BENEFICIARY = "BENEFICIARY", _("Bénéficiaire")
    MEMBER = "MEMBER", _("Membre du service commun")


def roles_for(kind: str) -> tuple[str, ...]:
    """The roles a type of convention gives its parties: the members of a service commun
    (L5211-4-2), a provider and its beneficiaries for every other type."""
    if kind == ConventionKind.SERVICE_COMMUN:
        return (PartyRole.MEMBER,)
    return (PartyRole.PROVIDER, PartyRole.BENEFICIARY)


class Party(models.Model):
    convention = models.ForeignKey(
        Convention, verbose_name=_("convention"), on_delete=models.CASCADE, related_name="parties"
    )
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="parties",
    )
    role = models.CharField(_("rôle"), max_length=12, choices=PartyRole.choices)
    # A party that joins (or leaves) by avenant is a party from (or until) the avenant's
    # effective date, once the avenant is signed; earlier years never see the change.
    joined_by = models.ForeignKey(
        "Amendment",
        verbose_name=_("entrée par l'avenant"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="joining_parties",
    )
    left_by = models.ForeignKey(
        "Amendment",
        verbose_name=_("sortie par l'avenant"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="leaving_parties",
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("partie")
        verbose_name_plural = _("parties")
        ordering = ["convention", "role", "organisation__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["convention", "organisation"],
                name="one_role_per_party",
                violation_error_message=_("Cette organisation est déjà partie à la convention."),
            ),
        ]

    def __str__(self):
        return f"{self.organisation} ({self.get_role_display()})"


class AllocationKey(models.TextChoices):
    UNITS = "UNITS", _("Unités consommées")
    POPULATION = "POPULATION", _("Population (millésime nommé)")
    FIXED_SHARES = "FIXED_SHARES", _("Pourcentages fixes")


class ConventionService(models.Model):
    """A service covered by the convention, counted in a unit type."""

    convention = models.ForeignKey(
        Convention, verbose_name=_("convention"), on_delete=models.CASCADE, related_name="services"
    )
    service = models.ForeignKey(
        Service,
        verbose_name=_("service"),
        on_delete=models.PROTECT,
        related_name="convention_lines",
    )
    unit_type = models.ForeignKey(
        UnitType,
        verbose_name=_("unité de fonctionnement"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    allocation_key = models.CharField(
        _("clé de répartition"),
        max_length=12,
        choices=AllocationKey.choices,
        blank=True,
        help_text=_("Pour un service commun."),
    )
    population_vintage = models.PositiveSmallIntegerField(
        _("millésime de population"),
        null=True,
        blank=True,
        help_text=_("Obligatoire pour une clé de population."),
    )
    # A service added (or withdrawn) by avenant is covered from (or until) its effective date.
    added_by = models.ForeignKey(
        "Amendment",
        verbose_name=_("ajouté par l'avenant"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="added_services",
    )
    removed_by = models.ForeignKey(
        "Amendment",
        verbose_name=_("retiré par l'avenant"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="removed_services",
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("service couvert")
        verbose_name_plural = _("services couverts")
        ordering = ["convention", "service__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["convention", "service"],
                name="service_once_per_convention",
                violation_error_message=_("Ce service figure déjà dans la convention."),
            ),
            models.CheckConstraint(
                condition=~Q(allocation_key=AllocationKey.POPULATION)
                | Q(population_vintage__isnull=False),
                name="population_key_names_its_vintage",
                violation_error_message=_("Une clé de population doit nommer son millésime."),
            ),
        ]

    def __str__(self):
        return f"{self.service} ({self.unit_type})"


class Terms(models.Model):
    """Financial and duration terms, versioned: the initial ones, then one set per avenant.

    The terms in force on a date are those with the latest ``effective_from`` on or before it,
    among the initial terms and those of signed avenants (see ``ConventionQuerySet``/services).
    """

    convention = models.ForeignKey(
        Convention, verbose_name=_("convention"), on_delete=models.CASCADE, related_name="terms"
    )
    amendment = models.OneToOneField(
        "Amendment",
        verbose_name=_("avenant"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="terms",
    )
    effective_from = models.DateField(
        _("applicable à partir du"), validators=[validate_plausible_date]
    )
    settlement_mode = models.CharField(
        _("modalité de règlement"), max_length=16, choices=SettlementMode.choices
    )
    periodicity_months = models.PositiveSmallIntegerField(
        _("périodicité des remboursements (mois)"), validators=[MinValueValidator(1)]
    )
    instalment_count = models.PositiveSmallIntegerField(
        _("nombre d'acomptes par an"), default=0, validators=[MaxValueValidator(12)]
    )
    unit_cost_method = models.TextField(_("méthode de détermination du coût unitaire"), blank=True)
    end_date = models.DateField(
        _("date d'échéance"), null=True, blank=True, validators=[validate_plausible_date]
    )
    tacit_renewal = models.BooleanField(_("reconduction tacite"), default=False)
    notice_months = models.PositiveSmallIntegerField(_("préavis de résiliation (mois)"), default=3)
    managing_share_mode = models.CharField(
        _("participation du gestionnaire (service commun réparti par clé)"),
        max_length=16,
        choices=ManagingShare.choices,
        blank=True,
        help_text=_(
            "Comment l'organisation gestionnaire supporte sa part du coût d'un service commun "
            "réparti par une clé (population, pourcentages, unités)."
        ),
    )
    managing_share_value = models.DecimalField(
        _("part ou pondération du gestionnaire"),
        max_digits=14,
        decimal_places=3,
        null=True,
        blank=True,
        help_text=_("Pourcentage pour une part fixe ; pondération (ex. population équivalente)."),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("conditions")
        verbose_name_plural = _("conditions")
        ordering = ["convention", "effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["convention", "effective_from"],
                name="one_terms_per_effective_date",
                violation_error_message=_(
                    "Des conditions s'appliquent déjà à partir de cette date."
                ),
            ),
            models.CheckConstraint(
                condition=Q(periodicity_months__gte=1), name="periodicity_at_least_one_month"
            ),
            models.CheckConstraint(
                condition=(
                    Q(managing_share_mode__in=["", "NONE"]) & Q(managing_share_value__isnull=True)
                )
                | (
                    Q(managing_share_mode="FIXED_PERCENT")
                    & Q(managing_share_value__isnull=False)
                    & Q(managing_share_value__gte=0)
                    & Q(managing_share_value__lte=100)
                )
                | (
                    Q(managing_share_mode="WEIGHT")
                    & Q(managing_share_value__isnull=False)
                    & Q(managing_share_value__gte=0)
                ),
                name="managing_share_value_fits_its_mode",
                violation_error_message=_(
                    "Une part fixe du gestionnaire est un pourcentage entre 0 et 100 ; une "
                    "pondération est positive ; sans participation, aucune valeur."
                ),
            ),
        ]

    def __str__(self):
        if self.amendment_id:
            return gettext("Conditions de l'avenant n° %(number)s") % {
                "number": self.amendment.number
            }
        return gettext("Conditions initiales")

    @property
    def settles_on_ac_only(self) -> bool:
        return self.settlement_mode == SettlementMode.AC_IMPUTATION

    @property
    def settles_mixed(self) -> bool:
        return self.settlement_mode == SettlementMode.MIXED


class UsageForecast(models.Model):
    """Forecast units of use per beneficiary and year (D5211-16), part of a set of terms."""

    terms = models.ForeignKey(
        Terms, verbose_name=_("conditions"), on_delete=models.CASCADE, related_name="forecasts"
    )
    service = models.ForeignKey(
        ConventionService,
        verbose_name=_("service"),
        on_delete=models.CASCADE,
        related_name="forecasts",
    )
    beneficiary = models.ForeignKey(
        Organisation, verbose_name=_("bénéficiaire"), on_delete=models.PROTECT, related_name="+"
    )
    year = models.PositiveSmallIntegerField(_("année"))
    units = models.DecimalField(_("unités prévues"), max_digits=12, decimal_places=3)
    fixed_share_percent = models.DecimalField(
        _("part fixe (%)"),
        max_digits=6,
        decimal_places=3,
        null=True,
        blank=True,
        help_text=_("Pour une clé en pourcentages fixes."),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("prévision d'utilisation")
        verbose_name_plural = _("prévisions d'utilisation")
        ordering = ["terms", "year", "service", "beneficiary__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["terms", "service", "beneficiary", "year"],
                name="one_forecast_per_beneficiary_service_year",
                violation_error_message=_(
                    "Une prévision existe déjà pour ce bénéficiaire, ce service et cette année."
                ),
            ),
            models.CheckConstraint(
                condition=Q(units__gte=0),
                name="forecast_units_not_negative",
                violation_error_message=_("Les unités prévues ne peuvent être négatives."),
            ),
            models.CheckConstraint(
                condition=Q(fixed_share_percent__isnull=True)
                | (Q(fixed_share_percent__gte=0) & Q(fixed_share_percent__lte=100)),
                name="fixed_share_is_a_percentage",
                violation_error_message=_("Une part fixe est comprise entre 0 et 100 %%."),
            ),
        ]

    def __str__(self):
        return f"{self.beneficiary} {self.year} : {self.units}"


class Amendment(models.Model):
    """An avenant: numbered, effective from a date, with its own deliberations and signature."""

    class AmendmentStatus(models.TextChoices):
        DRAFT = "DRAFT", _("Projet")
        SIGNED = "SIGNED", _("Signé")

    convention = models.ForeignKey(
        Convention,
        verbose_name=_("convention"),
        on_delete=models.CASCADE,
        related_name="amendments",
    )
    number = models.PositiveSmallIntegerField(_("numéro"), editable=False)
    object = models.TextField(_("objet de l'avenant"))
    effective_from = models.DateField(_("prend effet le"), validators=[validate_plausible_date])
    status = models.CharField(
        _("statut"),
        max_length=8,
        choices=AmendmentStatus.choices,
        default=AmendmentStatus.DRAFT,
        editable=False,
    )
    signature_date = models.DateField(
        _("date de signature"),
        null=True,
        blank=True,
        editable=False,
        validators=[validate_plausible_date],
    )
    # An avenant of a service commun that changes its members or services changes the agents'
    # situation: the fiche d'impact is updated before the CST opinions (L5211-4-2).
    impact_established_on = models.DateField(
        _("fiche d'impact mise à jour le"),
        null=True,
        blank=True,
        validators=[validate_plausible_date],
    )
    impact_summary = models.TextField(
        _("effets de l'avenant sur l'organisation, la rémunération et les droits acquis"),
        blank=True,
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("avenant")
        verbose_name_plural = _("avenants")
        ordering = ["convention", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["convention", "number"], name="amendment_number_unique"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="amendment_number_positive"),
        ]

    def __str__(self):
        return gettext("Avenant n° %(number)s") % {"number": self.number}


class SignedDocument(models.Model):
    """The PDF of an act as it was signed, the convention or one of its avenants, frozen at
    signature with its SHA-256: what the parties signed never changes, whatever avenant comes
    later (the database refuses any update, see migration 0006)."""

    convention = models.ForeignKey(
        Convention,
        verbose_name=_("convention"),
        on_delete=models.CASCADE,
        related_name="signed_documents",
    )
    amendment = models.ForeignKey(
        Amendment,
        verbose_name=_("avenant"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="signed_documents",
        help_text=_("Vide pour la convention elle-même."),
    )
    signed_on = models.DateField(_("signé le"), validators=[validate_plausible_date])
    pdf = models.BinaryField(_("PDF"), editable=False)
    sha256 = models.CharField(_("empreinte SHA-256"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("figé le"), auto_now_add=True)

    class Meta:
        verbose_name = _("acte signé (PDF figé)")
        verbose_name_plural = _("actes signés (PDF figés)")
        ordering = ["convention", "signed_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["convention"],
                condition=Q(amendment__isnull=True),
                name="one_signed_document_per_convention",
            ),
            models.UniqueConstraint(
                fields=["amendment"],
                condition=Q(amendment__isnull=False),
                name="one_signed_document_per_amendment",
            ),
        ]

    def __str__(self):
        if self.amendment_id:
            return gettext("Avenant n° %(number)s signé le %(date)s") % {
                "number": self.amendment.number,
                "date": self.signed_on.strftime("%d/%m/%Y"),
            }
        return gettext("Convention signée le %(date)s") % {
            "date": self.signed_on.strftime("%d/%m/%Y")
        }


class Vote(models.TextChoices):
    ADOPTED = "ADOPTED", _("Adoptée")
    REJECTED = "REJECTED", _("Rejetée")


class Deliberation(models.Model):
    """A deliberation of an assembly approving the convention (or one of its avenants)."""

    convention = models.ForeignKey(
        Convention,
        verbose_name=_("convention"),
        on_delete=models.CASCADE,
        related_name="deliberations",
    )
    amendment = models.ForeignKey(
        Amendment,
        verbose_name=_("avenant"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliberations",
        help_text=_("Vide pour la délibération sur la convention elle-même."),
    )
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="deliberations",
    )
    assembly = models.CharField(
        _("assemblée"),
        max_length=120,
        help_text=_("Ex. : conseil métropolitain, conseil municipal."),
    )
    date = models.DateField(_("date de séance"), validators=[validate_plausible_date])
    number = models.CharField(_("numéro"), max_length=40)
    object = models.CharField(_("objet"), max_length=300, blank=True)
    vote = models.CharField(_("vote"), max_length=8, choices=Vote.choices, default=Vote.ADOPTED)
    votes_for = models.PositiveIntegerField(_("voix pour"), null=True, blank=True)
    votes_against = models.PositiveIntegerField(_("voix contre"), null=True, blank=True)
    abstentions = models.PositiveIntegerField(_("abstentions"), null=True, blank=True)
    link = models.URLField(_("lien vers l'acte"), blank=True)
    # A deliberation is enforceable once published and transmitted to the représentant de
    # l'État (CGCT L2131-1; L2131-2 for those subject to transmission).
    transmitted_on = models.DateField(
        _("transmise au contrôle de légalité le"),
        null=True,
        blank=True,
        validators=[validate_plausible_date],
    )
    acknowledgement_number = models.CharField(
        _("n° d'accusé de réception (préfecture)"), max_length=60, blank=True
    )
    published_on = models.DateField(
        _("publiée le"), null=True, blank=True, validators=[validate_plausible_date]
    )
    designates_manager = models.BooleanField(
        _("désigne la commune gestionnaire du service commun"),
        default=False,
        help_text=_(
            "Délibération de l'EPCI choisissant la commune qui gère le service commun, à titre "
            "dérogatoire (L5211-4-2)."
        ),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("délibération")
        verbose_name_plural = _("délibérations")
        ordering = ["date", "organisation__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "number"],
                name="deliberation_number_unique_per_organisation",
                violation_error_message=_(
                    "Ce numéro de délibération existe déjà pour cette organisation."
                ),
            ),
            models.CheckConstraint(
                condition=Q(transmitted_on__isnull=True) | Q(transmitted_on__gte=F("date")),
                name="deliberation_transmitted_after_its_session",
                violation_error_message=_(
                    "Une délibération ne peut être transmise avant sa séance."
                ),
            ),
            models.CheckConstraint(
                condition=Q(published_on__isnull=True) | Q(published_on__gte=F("date")),
                name="deliberation_published_after_its_session",
                violation_error_message=_("Une délibération ne peut être publiée avant sa séance."),
            ),
        ]

    def __str__(self):
        return gettext("Délibération n° %(number)s du %(date)s (%(organisation)s)") % {
            "number": self.number,
            "date": self.date.strftime("%d/%m/%Y"),
            "organisation": self.organisation,
        }


class StaffBody(models.TextChoices):
    CST = "CST", _("Comité social territorial")
    # A collectivité of fewer than 50 agents has no CST of its own: the CST placed with its
    # centre de gestion is competent (for the territory, the CDG of the Puy-de-Dôme).
    CST_CDG = "CDG", _("Comité social territorial du centre de gestion")
    CT = "CT", _("Comité technique (avant le 1er janvier 2023)")
    CAP = "CAP", _("Commission administrative paritaire")
    CCP = "CCP", _("Commission consultative paritaire")


class Opinion(models.TextChoices):
    FAVOURABLE = "FAVOURABLE", _("Favorable")
    UNFAVOURABLE = "UNFAVOURABLE", _("Défavorable")
    SPLIT = "SPLIT", _("Partagé")


class StaffBodyOpinion(models.Model):
    convention = models.ForeignKey(
        Convention, verbose_name=_("convention"), on_delete=models.CASCADE, related_name="opinions"
    )
    amendment = models.ForeignKey(
        Amendment,
        verbose_name=_("avenant"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="opinions",
    )
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.PROTECT, related_name="+"
    )
    body = models.CharField(_("instance"), max_length=3, choices=StaffBody.choices)
    body_name = models.CharField(
        _("instance ayant rendu l'avis"),
        max_length=200,
        blank=True,
        help_text=_("Ex. : CST du centre de gestion du Puy-de-Dôme."),
    )
    date = models.DateField(_("date de l'avis"), validators=[validate_plausible_date])
    opinion = models.CharField(_("avis"), max_length=12, choices=Opinion.choices)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("avis d'instance paritaire")
        verbose_name_plural = _("avis d'instances paritaires")
        ordering = ["date"]

    def __str__(self):
        return gettext("Avis %(opinion)s du %(body)s %(of_organisation)s, %(date)s") % {
            "opinion": self.get_opinion_display().lower(),
            "body": self.body,
            "of_organisation": of(self.organisation),
            "date": self.date.strftime("%d/%m/%Y"),
        }


class ImpactSheet(models.Model):
    """Fiche d'impact of a service commun (L5211-4-2), annexed to the convention."""

    convention = models.OneToOneField(
        Convention,
        verbose_name=_("convention"),
        on_delete=models.CASCADE,
        related_name="impact_sheet",
    )
    established_on = models.DateField(_("établie le"), validators=[validate_plausible_date])
    organisation_and_working_conditions = models.TextField(
        _("effets sur l'organisation et les conditions de travail")
    )
    pay = models.TextField(_("effets sur la rémunération"))
    acquired_rights = models.TextField(_("effets sur les droits acquis"))
    agreements = models.TextField(_("accords conclus"), blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("fiche d'impact")
        verbose_name_plural = _("fiches d'impact")

    def __str__(self):
        return gettext("Fiche d'impact de %(convention)s") % {
            "convention": self.convention.reference
        }


class AgentRegime(models.TextChoices):
    TRANSFER = "TRANSFER", _("Transfert")
    MAD_BY_LAW = "MAD_BY_LAW", _("Mise à disposition de plein droit")
    MAD_INDIVIDUAL = "MAD_INDIVIDUAL", _("Mise à disposition individuelle")


class AgentAssignment(models.Model):
    """An agent concerned by the convention, under a pseudonymous reference (no personal data)."""

    convention = models.ForeignKey(
        Convention, verbose_name=_("convention"), on_delete=models.CASCADE, related_name="agents"
    )
    agent_ref = models.CharField(
        _("référence de l'agent"), max_length=40, help_text=_("Référence pseudonyme.")
    )
    job_title = models.CharField(_("fonction"), max_length=200, blank=True)
    employer = models.ForeignKey(
        Organisation, verbose_name=_("employeur"), on_delete=models.PROTECT, related_name="+"
    )
    regime = models.CharField(_("régime"), max_length=16, choices=AgentRegime.choices)
    share_percent = models.DecimalField(
        _("quotité (%)"),
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    functional_authority = models.CharField(_("autorité fonctionnelle"), max_length=200)
    hierarchical_authority = models.CharField(_("autorité hiérarchique"), max_length=200)
    agent_consent = models.BooleanField(_("accord de l'agent recueilli"), default=False)
    start_date = models.DateField(_("début"), validators=[validate_plausible_date])
    end_date = models.DateField(
        _("fin"), null=True, blank=True, validators=[validate_plausible_date]
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("agent concerné")
        verbose_name_plural = _("agents concernés")
        ordering = ["convention", "agent_ref"]
        constraints = [
            models.CheckConstraint(
                condition=Q(share_percent__gt=0) & Q(share_percent__lte=100),
                name="agent_share_is_a_percentage",
                violation_error_message=_("La quotité est comprise entre 0 et 100 %%."),
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="agent_dates_ordered",
                violation_error_message=_("La fin précède le début."),
            ),
        ]

    def __str__(self):
        return f"{self.agent_ref} ({self.get_regime_display()}, {self.share_percent} %)"

    def clean(self):
        errors = {}
        if self.regime == AgentRegime.TRANSFER and self.share_percent not in (None, 100):
            errors["share_percent"] = _(
                "Un transfert suppose un agent à 100 % dans le service ; à temps partiel, "
                "l'agent est mis à disposition de plein droit."
            )
        in_service_commun = (
            self.convention_id is not None and self.convention.kind == ConventionKind.SERVICE_COMMUN
        )
        if (
            in_service_commun
            and self.regime == AgentRegime.MAD_BY_LAW
            and self.share_percent == 100
        ):
            errors["regime"] = _(
                "Un agent à 100 % dans le service commun est transféré de plein droit, "
                "pas mis à disposition."
            )
        if self.regime == AgentRegime.MAD_INDIVIDUAL:
            if not self.agent_consent:
                errors["agent_consent"] = _(
                    "Une mise à disposition individuelle requiert l'accord de l'agent."
                )
            if not self.end_date:
                errors["end_date"] = _(
                    "Une mise à disposition individuelle a une durée : indiquez sa fin."
                )
        if errors:
            raise ValidationError(errors)


def attachment_path(instance, filename):
    return f"conventions/{instance.convention.reference}/{filename}"


class Attachment(models.Model):
    """A signed scan (PDF only; checked on upload by conventions.forms.AttachmentForm)."""

    convention = models.ForeignKey(
        Convention,
        verbose_name=_("convention"),
        on_delete=models.CASCADE,
        related_name="attachments",
    )
    title = models.CharField(_("titre"), max_length=200)
    file = models.FileField(_("fichier PDF"), upload_to=attachment_path)
    size = models.PositiveIntegerField(_("taille (octets)"), editable=False)
    sha256 = models.CharField(_("empreinte SHA-256"), max_length=64, editable=False)
    uploaded_at = models.DateTimeField(_("déposé le"), auto_now_add=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("déposé par"),
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("pièce jointe")
        verbose_name_plural = _("pièces jointes")
        ordering = ["-uploaded_at"]

    def __str__(self):
        return self.title


class Termination(models.Model):
    """Résiliation of a convention, with what becomes of agents and assets (réversibilité)."""

    convention = models.OneToOneField(
        Convention,
        verbose_name=_("convention"),
        on_delete=models.CASCADE,
        related_name="termination",
    )
    notified_on = models.DateField(_("notifiée le"), validators=[validate_plausible_date])
    effective_on = models.DateField(_("prend effet le"), validators=[validate_plausible_date])
    requested_by = models.ForeignKey(
        Organisation,
        verbose_name=_("à l'initiative de"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.TextField(_("motif"))
    notice_respected = models.BooleanField(_("préavis respecté"), editable=False)
    agents_outcome = models.TextField(_("situation des agents"))
    assets_outcome = models.TextField(_("situation des biens"), blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("résiliation")
        verbose_name_plural = _("résiliations")
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_on__gte=F("notified_on")),
                name="termination_effective_after_notice",
                violation_error_message=_(
                    "La résiliation ne peut prendre effet avant sa notification."
                ),
            ),
        ]

    def __str__(self):
        return gettext("Résiliation de %(convention)s") % {"convention": self.convention.reference}


class ReferenceCounter(models.Model):
    """Last reference number given per prefix and year (CAM-2025-007), incremented under a row
    lock. Keyed by the prefix, which is the territory's own (CONV for the one EPCI without), so
    each territory numbers in its own series and references stay unique across the deployment."""

    prefix = models.CharField(_("préfixe"), max_length=10, default="CONV")
    year = models.PositiveSmallIntegerField(_("année"))
    last_number = models.PositiveIntegerField(_("dernier numéro"), default=0)

    class Meta:
        verbose_name = _("compteur de références")
        verbose_name_plural = _("compteurs de références")
        constraints = [
            models.UniqueConstraint(fields=["prefix", "year"], name="one_reference_counter"),
        ]

    def __str__(self):
        return f"{self.prefix}-{self.year} : {self.last_number}"


# --- the mutualisation scheme (L5211-39-1) ------------------------------------------------------


class SchemeStatus(models.TextChoices):
    DRAFT = "DRAFT", _("Projet")
    CONSULTATION = "CONSULTATION", _("Soumis à l'avis des conseils municipaux")
    ADOPTED = "ADOPTED", _("Approuvé par le conseil communautaire")


class SchemeQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The schemes of the territories whose staff the user is; for a commune's user, the
        schemes transmitted to their commune: not a draft, of an EPCI their commune was a member
        of during the scheme's mandate (a commune that left before it reads none)."""
        from mutualisation.models import EpciMembership
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        member = EpciMembership.objects.filter(
            member_id__in=scope.organisation_ids,
            epci_id=OuterRef("territory_id"),
            valid_from__year__lte=OuterRef("last_year"),
        ).filter(Q(valid_until__isnull=True) | Q(valid_until__year__gte=OuterRef("first_year")))
        return self.filter(
            Q(territory_id__in=scope.territory_ids)
            | (Q(Exists(member)) & ~Q(status=SchemeStatus.DRAFT))
        )

    def of_territories(self, user):
        """The schemes the user may change: those of the territories whose staff they are."""
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        return self.filter(territory_id__in=scope.territory_ids)


class Scheme(models.Model):
    """The schéma de mutualisation of a territory for a mandate (L5211-39-1): a project in the
    president's report, submitted to the municipal councils (three months to give an opinion,
    after which it is deemed favourable), then approved by the EPCI's council. Its progress is
    reported each year at the budget orientation debate (the annual report)."""

    territory = models.ForeignKey(
        Organisation,
        verbose_name=_("territoire (EPCI)"),
        on_delete=models.PROTECT,
        related_name="schemes",
        limit_choices_to={"kind": OrganisationKind.EPCI},
    )
    title = models.CharField(_("intitulé"), max_length=250)
    first_year = models.PositiveSmallIntegerField(_("première année du mandat"))
    last_year = models.PositiveSmallIntegerField(_("dernière année du mandat"))
    summary = models.TextField(_("orientations"), blank=True)
    status = models.CharField(
        _("statut"),
        max_length=12,
        choices=SchemeStatus.choices,
        default=SchemeStatus.DRAFT,
        editable=False,
    )
    submitted_on = models.DateField(
        _("transmis aux communes pour avis le"),
        null=True,
        blank=True,
        editable=False,
        validators=[validate_plausible_date],
    )
    adopted_on = models.DateField(
        _("approuvé par le conseil le"),
        null=True,
        blank=True,
        editable=False,
        validators=[validate_plausible_date],
    )
    deliberation_number = models.CharField(
        _("n° de la délibération d'approbation"), max_length=40, blank=True, editable=False
    )

    history = HistoricalRecords()
    objects = SchemeQuerySet.as_manager()

    class Meta:
        verbose_name = _("schéma de mutualisation")
        verbose_name_plural = _("schémas de mutualisation")
        ordering = ["territory__name", "-first_year"]
        constraints = [
            models.UniqueConstraint(
                fields=["territory", "first_year"],
                name="one_scheme_per_territory_and_mandate",
                violation_error_message=_(
                    "Ce territoire a déjà un schéma de mutualisation pour ce mandat."
                ),
            ),
            models.CheckConstraint(
                condition=Q(last_year__gte=F("first_year")),
                name="scheme_years_ordered",
                violation_error_message=_("La dernière année du mandat précède la première."),
            ),
            models.CheckConstraint(
                condition=Q(adopted_on__isnull=True)
                | (Q(submitted_on__isnull=False) & Q(adopted_on__gte=F("submitted_on"))),
                name="scheme_adopted_after_consultation",
                violation_error_message=_(
                    "Le schéma ne peut être approuvé avant d'avoir été soumis aux communes."
                ),
            ),
        ]

    def __str__(self):
        return f"{self.title} ({self.first_year}-{self.last_year})"

    def get_absolute_url(self):
        return reverse("conventions:scheme", args=[self.pk])


class CouncilOpinion(models.TextChoices):
    """A municipal council's opinion on the scheme: favourable or not (a staff body may be split;
    a council votes)."""

    FAVOURABLE = "FAVOURABLE", _("Favorable")
    UNFAVOURABLE = "UNFAVOURABLE", _("Défavorable")


class SchemeOpinion(models.Model):
    """The opinion of a member commune's council on the scheme's project."""

    scheme = models.ForeignKey(
        Scheme, verbose_name=_("schéma"), on_delete=models.CASCADE, related_name="opinions"
    )
    commune = models.ForeignKey(
        Organisation,
        verbose_name=_("commune"),
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": OrganisationKind.COMMUNE},
    )
    date = models.DateField(_("date de la délibération"), validators=[validate_plausible_date])
    deliberation_number = models.CharField(_("n° de délibération"), max_length=40, blank=True)
    opinion = models.CharField(_("avis"), max_length=12, choices=CouncilOpinion.choices)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("avis d'un conseil municipal sur le schéma")
        verbose_name_plural = _("avis des conseils municipaux sur le schéma")
        ordering = ["date", "commune__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["scheme", "commune"],
                name="one_opinion_per_commune_on_a_scheme",
                violation_error_message=_("Cette commune a déjà rendu son avis sur le schéma."),
            ),
        ]

    def __str__(self):
        return gettext("Avis %(opinion)s %(of_commune)s du %(date)s") % {
            "opinion": self.get_opinion_display().lower(),
            "of_commune": of(self.commune),
            "date": self.date.strftime("%d/%m/%Y"),
        }


class Horizon(models.TextChoices):
    SHORT = "SHORT", _("Court terme")
    MEDIUM = "MEDIUM", _("Moyen terme")
    LONG = "LONG", _("Long terme")


class ActionStatus(models.TextChoices):
    PLANNED = "PLANNED", _("Envisagée")
    PREPARING = "PREPARING", _("En préparation")
    DONE = "DONE", _("Réalisée")
    ABANDONED = "ABANDONED", _("Abandonnée")


class SchemeAction(models.Model):
    """A planned action of the scheme: a service to share with some communes by a horizon, its
    expected effect on staff and operating costs, and the conventions that realise it."""

    scheme = models.ForeignKey(
        Scheme, verbose_name=_("schéma"), on_delete=models.CASCADE, related_name="actions"
    )
    title = models.CharField(_("action"), max_length=250)
    description = models.TextField(_("description"), blank=True)
    service = models.ForeignKey(
        Service,
        verbose_name=_("service"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="scheme_actions",
    )
    kind = models.CharField(
        _("forme envisagée"), max_length=24, choices=ConventionKind.choices, blank=True
    )
    communes = models.ManyToManyField(
        Organisation,
        verbose_name=_("communes concernées"),
        related_name="+",
        blank=True,
        limit_choices_to={"kind": OrganisationKind.COMMUNE},
    )
    horizon = models.CharField(_("horizon"), max_length=6, choices=Horizon.choices)
    target_year = models.PositiveSmallIntegerField(_("année visée"))
    expected_fte_change = models.DecimalField(
        _("effet attendu sur les effectifs (ETP)"),
        max_digits=7,
        decimal_places=2,
        default=0,
        help_text=_("Variation en équivalents temps plein ; négative pour une économie."),
    )
    expected_cost_change = models.DecimalField(
        _("effet attendu sur les dépenses de fonctionnement (€ par an)"),
        max_digits=14,
        decimal_places=2,
        default=0,
        help_text=_("Variation annuelle ; négative pour une économie."),
    )
    status = models.CharField(
        _("avancement"), max_length=10, choices=ActionStatus.choices, default=ActionStatus.PLANNED
    )
    progress_note = models.TextField(_("point d'avancement"), blank=True)
    conventions = models.ManyToManyField(
        Convention,
        verbose_name=_("conventions qui la réalisent"),
        related_name="scheme_actions",
        blank=True,
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("action du schéma")
        verbose_name_plural = _("actions du schéma")
        ordering = ["scheme", "target_year", "title"]

    def __str__(self):
        return self.title

    def clean(self):
        scheme = self.scheme if self.scheme_id else None
        if (
            scheme
            and self.target_year
            and not (scheme.first_year <= self.target_year <= scheme.last_year)
        ):
            raise ValidationError(
                {
                    "target_year": _(
                        "L'année visée doit être comprise dans le mandat (%(first)s-%(last)s)."
                    )
                    % {"first": scheme.first_year, "last": scheme.last_year}
                }
            )
