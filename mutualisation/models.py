"""Reference data of the territory: organisations, populations, shared services, units of use,
and the memberships of users in organisations (who may do what)."""

from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from mutualisation.french import of
from mutualisation.validators import (
    validate_insee_code,
    validate_plausible_date,
    validate_prefix,
    validate_siren,
)

# The platform's numbering, that of the one EPCI (at most) whose prefixes are blank:
# CONV-2026-001 for conventions, EA-2026-0001 for statements (état annuel).
DEFAULT_REFERENCE_PREFIX = "CONV"
DEFAULT_STATEMENT_PREFIX = "EA"
DEFAULT_PREFIXES = {
    "reference_prefix": DEFAULT_REFERENCE_PREFIX,
    "statement_prefix": DEFAULT_STATEMENT_PREFIX,
}


def numbering_prefix(field: str):
    """The prefix an EPCI numbers with, as an SQL expression: its ``field`` (reference_prefix or
    statement_prefix), or the default when blank (as the statements' triggers compute it)."""
    return Coalesce(NullIf(F(field), Value("")), Value(DEFAULT_PREFIXES[field]))


# The apps that give numbers with a territory's prefixes say the last number a territory was given
# with a prefix (conventions: references; costing: statements), registered when they are ready:
# reference data does not know them. A territory may not leave a prefix it has numbered with.
NUMBERS_GIVEN = {field: [] for field in DEFAULT_PREFIXES}


def register_numbers_given(field: str, last_number_given: str) -> None:
    """``last_number_given`` is the dotted path of a function (territory, prefix) that returns
    the last number ``territory`` was given with ``prefix`` in the series of ``field``
    (reference_prefix or statement_prefix), or None; imported only when a prefix changes."""
    if last_number_given not in NUMBERS_GIVEN[field]:
        NUMBERS_GIVEN[field].append(last_number_given)


class OrganisationKind(models.TextChoices):
    EPCI = "EPCI", _("EPCI à fiscalité propre")
    COMMUNE = "COMMUNE", _("Commune")
    ATTACHED_BODY = "ATTACHED_BODY", _("Établissement rattaché (CCAS, CIAS…)")
    SYNDICATE = "SYNDICATE", _("Syndicat")


class EpciNature(models.TextChoices):
    METRO = "METRO", _("Métropole")
    CU = "CU", _("Communauté urbaine")
    CA = "CA", _("Communauté d'agglomération")
    CC = "CC", _("Communauté de communes")


class TaxRegime(models.TextChoices):
    FPU = "FPU", _("Fiscalité professionnelle unique (FPU)")
    FA = "FA", _("Fiscalité additionnelle (FA)")


class BudgetNomenclature(models.TextChoices):
    M57 = "M57", _("M57")
    M14 = "M14", _("M14")


class OrganisationQuerySet(models.QuerySet):
    def communes(self):
        return self.filter(kind=OrganisationKind.COMMUNE)

    def epcis(self):
        return self.filter(kind=OrganisationKind.EPCI)

    def numbering_with(self, field: str, prefix: str):
        """The EPCIs whose ``field`` (reference_prefix or statement_prefix) numbers with
        ``prefix``: their own, or the default when they left it blank."""
        numbering = Q(**{field: prefix})
        if prefix == DEFAULT_PREFIXES[field]:
            numbering |= Q(**{field: ""})
        return self.epcis().filter(numbering)

    def visible_to(self, user):
        """Organisations the user may see: for the staff of a territory, its EPCI, its member
        communes (past and present) and every party to its conventions; their own
        organisation(s) for everyone; nothing for a user without a role. Superusers see all."""
        from mutualisation.rules import scope_of

        scope = scope_of(user)
        if scope.is_superuser:
            return self.all()
        if not scope.territory_ids:
            return self.filter(pk__in=scope.organisation_ids)
        territories = scope.territory_ids
        parties = Organisation.objects.filter(
            parties__convention__territory_id__in=territories
        ).values("pk")
        members = EpciMembership.objects.filter(epci_id__in=territories).values("member_id")
        return self.filter(
            Q(pk__in=territories)
            | Q(pk__in=scope.organisation_ids)
            | Q(pk__in=members)
            | Q(pk__in=parties)
        )


class Organisation(models.Model):
    kind = models.CharField(_("nature juridique"), max_length=16, choices=OrganisationKind.choices)
    name = models.CharField(_("nom"), max_length=200)
    siren = models.CharField(
        _("SIREN"),
        max_length=9,
        unique=True,
        validators=[validate_siren],
        help_text=_("9 chiffres, clé de Luhn vérifiée."),
    )
    insee_code = models.CharField(
        _("code INSEE"),
        max_length=5,
        unique=True,
        null=True,
        blank=True,
        validators=[validate_insee_code],
        help_text=_("Code officiel géographique des communes (5 caractères, 2A/2B pour la Corse)."),
    )
    epci_nature = models.CharField(
        _("nature de l'EPCI"), max_length=5, choices=EpciNature.choices, blank=True
    )
    tax_regime = models.CharField(
        _("régime fiscal"), max_length=3, choices=TaxRegime.choices, blank=True
    )
    budget_nomenclature = models.CharField(
        _("nomenclature budgétaire"),
        max_length=3,
        choices=BudgetNomenclature.choices,
        default=BudgetNomenclature.M57,
    )
    representative_title = models.CharField(
        _("qualité du représentant"),
        max_length=120,
        blank=True,
        help_text=_("Pour les blocs de signature, ex. « Le Président », « Le Maire »."),
    )
    representative_name = models.CharField(_("nom du représentant"), max_length=200, blank=True)
    representative_gender = models.CharField(
        _("accord du représentant"),
        max_length=1,
        choices=[("M", _("masculin (habilité)")), ("F", _("féminin (habilitée)"))],
        blank=True,
        help_text=_("Pour « dûment habilité(e) » dans les actes."),
    )
    seat = models.CharField(
        _("siège"),
        max_length=120,
        blank=True,
        help_text=_("Commune du siège, pour « Fait à … » (ex. Clermont-Ferrand)."),
    )
    administrative_court = models.CharField(
        _("tribunal administratif compétent"),
        max_length=120,
        blank=True,
        help_text=_("Ex. : tribunal administratif de Clermont-Ferrand."),
    )
    public_accountant = models.CharField(
        _("comptable public assignataire"),
        max_length=200,
        blank=True,
        help_text=_("Ex. : Service de gestion comptable de Clermont-Ferrand, adresse."),
    )
    address = models.TextField(_("adresse"), blank=True)
    # An EPCI is a territory: its staff work on its conventions, with its own numbering. Blank
    # prefixes number with the platform's defaults, which one EPCI only may use (constraints).
    reference_prefix = models.CharField(
        _("préfixe des références de conventions"),
        max_length=10,
        blank=True,
        validators=[validate_prefix],
        help_text=_(
            "EPCI seulement. Numérotation propre au territoire, ex. « CAM » donne CAM-2026-001 ; "
            "vide : numérotation par défaut CONV-2026-001, qu'un seul EPCI de l'installation "
            "peut avoir."
        ),
    )
    statement_prefix = models.CharField(
        _("préfixe des numéros d'états annuels"),
        max_length=8,
        blank=True,
        validators=[validate_prefix],
        help_text=_(
            "EPCI seulement. Ex. « EACAM » donne EACAM-2026-0001 ; vide : numérotation par "
            "défaut EA-2026-0001, qu'un seul EPCI de l'installation peut avoir."
        ),
    )
    statement_review_days = models.PositiveSmallIntegerField(
        _("délai de relecture des états (jours)"),
        null=True,
        blank=True,
        help_text=_(
            "EPCI seulement. Jours laissés aux communes pour relire un projet d'état ; "
            "vide : la valeur de la plateforme."
        ),
    )

    history = HistoricalRecords()
    objects = OrganisationQuerySet.as_manager()

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind=OrganisationKind.COMMUNE) | Q(insee_code__isnull=False),
                name="commune_has_insee_code",
                violation_error_message=_("Une commune doit avoir un code INSEE."),
            ),
            models.CheckConstraint(
                condition=(Q(kind=OrganisationKind.EPCI) & ~Q(epci_nature="") & ~Q(tax_regime=""))
                | (~Q(kind=OrganisationKind.EPCI) & Q(epci_nature="") & Q(tax_regime="")),
                name="epci_nature_and_tax_regime_only_for_epci",
                violation_error_message=_(
                    "La nature et le régime fiscal sont obligatoires pour un EPCI "
                    "et réservés à lui."
                ),
            ),
            models.CheckConstraint(
                condition=Q(kind=OrganisationKind.EPCI)
                | (Q(reference_prefix="") & Q(statement_prefix="") & Q(statement_review_days=None)),
                name="territory_settings_only_for_epci",
                violation_error_message=_(
                    "Préfixes et délai de relecture ne se règlent que pour un EPCI (un territoire)."
                ),
            ),
            # Each territory numbers in its own series (its own counter and year lock): two EPCIs
            # may not share a prefix, and a blank prefix counts as the default it numbers with.
            models.UniqueConstraint(
                numbering_prefix("reference_prefix"),
                condition=Q(kind=OrganisationKind.EPCI),
                name="one_territory_per_reference_numbering",
                violation_error_message=_(
                    "Ce préfixe de références est déjà celui d'un autre EPCI (un préfixe vide "
                    "vaut CONV)."
                ),
            ),
            models.UniqueConstraint(
                numbering_prefix("statement_prefix"),
                condition=Q(kind=OrganisationKind.EPCI),
                name="one_territory_per_statement_numbering",
                violation_error_message=_(
                    "Ce préfixe d'états est déjà celui d'un autre EPCI (un préfixe vide vaut EA)."
                ),
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_epci(self) -> bool:
        return self.kind == OrganisationKind.EPCI

    @property
    def effective_reference_prefix(self) -> str:
        """The prefix of the territory's convention references (CONV when left blank)."""
        return self.reference_prefix or DEFAULT_REFERENCE_PREFIX

    @property
    def effective_statement_prefix(self) -> str:
        """The prefix of the territory's statement numbers (EA when left blank)."""
        return self.statement_prefix or DEFAULT_STATEMENT_PREFIX

    def clean(self):
        """Name the territory that already numbers with the prefix this one would take (the
        database constraints refuse it too, without saying whom)."""
        if self.kind != OrganisationKind.EPCI:
            return
        errors = self.numbered_prefix_errors()
        for field, default in DEFAULT_PREFIXES.items():
            own = getattr(self, field)
            if field in errors:
                continue
            holder = (
                Organisation.objects.numbering_with(field, own or default)
                .exclude(pk=self.pk)
                .order_by("pk")
                .first()
            )
            if holder is None:
                continue
            if own:
                message = _(
                    "Le préfixe « %(prefix)s » est déjà celui de %(territory)s : "
                    "choisissez-en un pour ce territoire."
                )
            else:
                message = _(
                    "Sans préfixe, ce territoire prendrait la numérotation par défaut "
                    "« %(prefix)s », déjà celle de %(territory)s : choisissez-en un pour ce "
                    "territoire."
                )
            errors[field] = ValidationError(
                message,
                code="numbering_taken",
                params={"prefix": own or default, "territory": holder.name},
            )
        if errors:
            raise ValidationError(errors)

    def numbered_prefix_errors(self) -> dict:
        """The prefixes this territory would leave after numbering with them: CAM-2026-004
        given, a change to VAL would start a second series of the territory's numbers."""
        stored = (
            Organisation.objects.filter(pk=self.pk, kind=OrganisationKind.EPCI)
            .values(*DEFAULT_PREFIXES)
            .first()
            if self.pk
            else None
        )
        if stored is None:
            return {}
        errors = {}
        for field, default in DEFAULT_PREFIXES.items():
            before = stored[field] or default
            if (getattr(self, field) or default) == before:
                continue
            given = next(
                filter(None, (import_string(last)(self, before) for last in NUMBERS_GIVEN[field])),
                None,
            )
            if given:
                errors[field] = ValidationError(
                    _(
                        "Ce territoire numérote déjà avec « %(prefix)s » (dernier numéro "
                        "attribué : %(number)s) : changer de préfixe ouvrirait une seconde série "
                        "de numéros. Le préfixe ne peut plus changer."
                    ),
                    code="numbering_started",
                    params={"prefix": before, "number": given},
                )
        return errors

    @property
    def is_commune(self) -> bool:
        return self.kind == OrganisationKind.COMMUNE


class EpciMembershipQuerySet(models.QuerySet):
    def current(self, on=None):
        """Memberships valid on a date (today by default)."""
        on = on or timezone.localdate()
        return self.filter(valid_from__lte=on).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=on)
        )

    def during(self, first, last):
        """Memberships valid on at least one day from ``first`` to ``last``."""
        return self.filter(valid_from__lte=last).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=first)
        )


class EpciMembership(models.Model):
    """A commune's membership of its EPCI, with validity dates (adhésion, retrait)."""

    member = models.ForeignKey(
        Organisation,
        verbose_name=_("commune membre"),
        on_delete=models.PROTECT,
        related_name="epci_memberships",
    )
    epci = models.ForeignKey(
        Organisation,
        verbose_name=_("EPCI"),
        on_delete=models.PROTECT,
        related_name="member_memberships",
        limit_choices_to={"kind": OrganisationKind.EPCI},
    )
    valid_from = models.DateField(_("membre depuis le"), validators=[validate_plausible_date])
    valid_until = models.DateField(
        _("membre jusqu'au"), null=True, blank=True, validators=[validate_plausible_date]
    )

    history = HistoricalRecords()
    objects = EpciMembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("adhésion à l'EPCI")
        verbose_name_plural = _("adhésions à l'EPCI")
        ordering = ["epci__name", "member__name", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "epci", "valid_from"], name="one_membership_per_start_date"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=F("valid_from")),
                name="membership_dates_ordered",
                violation_error_message=_("La date de fin précède la date de début."),
            ),
            models.CheckConstraint(
                condition=~Q(member=F("epci")),
                name="membership_not_self",
                violation_error_message=_("Une organisation ne peut être membre d'elle-même."),
            ),
        ]

    def __str__(self):
        return gettext("%(member)s, membre %(of_epci)s") % {
            "member": self.member,
            "of_epci": of(self.epci),
        }

    def clean(self):
        errors = {}
        if self.epci_id and self.epci.kind != OrganisationKind.EPCI:
            errors["epci"] = _("L'organisation choisie n'est pas un EPCI.")
        if self.member_id and self.member.kind != OrganisationKind.COMMUNE:
            errors["member"] = _("Seule une commune peut être membre d'un EPCI à fiscalité propre.")
        if self.member_id and self.valid_from and not errors:
            overlapping = EpciMembership.objects.filter(member=self.member).exclude(pk=self.pk)
            overlapping = overlapping.filter(
                Q(valid_until__isnull=True) | Q(valid_until__gte=self.valid_from)
            )
            if self.valid_until:
                overlapping = overlapping.filter(valid_from__lte=self.valid_until)
            if overlapping.exists():
                errors["valid_from"] = _(
                    "Cette commune est déjà membre d'un EPCI sur une partie de cette période."
                )
        if errors:
            raise ValidationError(errors)


class PopulationTotals(NamedTuple):
    municipal: int
    total: int | None  # None when a record of the millésime lacks its total population


class PopulationRecordQuerySet(models.QuerySet):
    def totals_by_vintage(self, *, organisations, vintages) -> dict[int, PopulationTotals]:
        """Sum of municipal and total populations of the organisations, per millésime."""
        rows = (
            self.filter(organisation__in=organisations, vintage__in=vintages)
            .values("vintage")
            .annotate(
                sum_municipal=Sum("municipal"),
                sum_total=Sum("total"),
                records=Count("pk"),
                records_with_total=Count("total"),
            )
        )
        return {
            row["vintage"]: PopulationTotals(
                row["sum_municipal"],
                row["sum_total"] if row["records"] == row["records_with_total"] else None,
            )
            for row in rows
        }


class PopulationRecord(models.Model):
    """Legal populations of one millésime (INSEE), in force from a later year."""

    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="population_records",
    )
    vintage = models.PositiveSmallIntegerField(_("millésime"))
    in_force_year = models.PositiveSmallIntegerField(_("en vigueur à partir de"))
    municipal = models.PositiveIntegerField(_("population municipale"))
    total = models.PositiveIntegerField(_("population totale"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=300)

    history = HistoricalRecords()
    objects = PopulationRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("population légale")
        verbose_name_plural = _("populations légales")
        ordering = ["organisation__name", "-vintage"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "vintage"],
                name="one_population_per_vintage",
                violation_error_message=_(
                    "Une population de ce millésime existe déjà pour cette organisation."
                ),
            ),
            models.CheckConstraint(
                condition=Q(municipal__gt=0),
                name="municipal_population_positive",
                violation_error_message=_("La population municipale doit être positive."),
            ),
            models.CheckConstraint(
                condition=Q(total__isnull=True) | Q(total__gte=F("municipal")),
                name="total_population_at_least_municipal",
                violation_error_message=_(
                    "La population totale ne peut être inférieure à la population municipale."
                ),
            ),
            models.CheckConstraint(
                condition=Q(in_force_year__gte=F("vintage")),
                name="population_in_force_after_vintage",
                violation_error_message=_(
                    "Une population ne peut entrer en vigueur avant son millésime."
                ),
            ),
        ]

    def __str__(self):
        return gettext("%(organisation)s, millésime %(vintage)s") % {
            "organisation": self.organisation,
            "vintage": self.vintage,
        }


class Unit(models.TextChoices):
    HOUR = "HOUR", _("heure")
    ACT = "ACT", _("acte")
    PAY_SLIP = "PAY_SLIP", _("bulletin de paie")
    WORKSTATION = "WORKSTATION", _("poste de travail")
    PROCEDURE = "PROCEDURE", _("procédure")
    SQUARE_METRE = "SQUARE_METRE", _("m²")
    LINEAR_METRE = "LINEAR_METRE", _("mètre linéaire")
    KILOMETRE = "KILOMETRE", _("km")
    WORKING_TIME_PERCENT = "WORKING_TIME_PERCENT", _("% du temps de travail")
    INHABITANT = "INHABITANT", _("habitant")


class UnitType(models.Model):
    """A unit of use (unité de fonctionnement) in which a service's use is counted."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    label = models.CharField(_("libellé"), max_length=200)
    unit = models.CharField(_("unité"), max_length=24, choices=Unit.choices)
    description = models.TextField(_("description"), blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("unité de fonctionnement")
        verbose_name_plural = _("unités de fonctionnement")
        ordering = ["label"]

    def __str__(self):
        return self.label

    @property
    def is_weighted(self) -> bool:
        return self.weights.exists()


class UnitWeight(models.Model):
    """One weighting of a unit type, e.g. ADS « équivalent permis »: PC 1, DP 0,5, CU 0,2."""

    unit_type = models.ForeignKey(
        UnitType,
        verbose_name=_("unité de fonctionnement"),
        on_delete=models.CASCADE,
        related_name="weights",
    )
    code = models.CharField(_("code"), max_length=20)
    label = models.CharField(_("libellé"), max_length=200)
    weight = models.DecimalField(_("pondération"), max_digits=7, decimal_places=3)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("pondération")
        verbose_name_plural = _("pondérations")
        ordering = ["unit_type", "-weight", "code"]
        constraints = [
            models.UniqueConstraint(fields=["unit_type", "code"], name="one_weight_per_code"),
            models.CheckConstraint(
                condition=Q(weight__gte=0),
                name="weight_not_negative",
                violation_error_message=_("Une pondération ne peut être négative."),
            ),
        ]

    def __str__(self):
        return f"{self.code} × {self.weight}"


class ServiceKind(models.TextChoices):
    FUNCTIONAL = "FUNCTIONAL", _("Mission fonctionnelle")
    OPERATIONAL = "OPERATIONAL", _("Mission opérationnelle")


class Service(models.Model):
    """A service that an organisation provides to others (service mutualisé)."""

    # Unique within its territory (one_service_code_per_territory): every EPCI names its
    # own « ads » or « si »; a convention's territory says which one a usage file means.
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("nom"), max_length=200)
    provider = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation prestataire"),
        on_delete=models.PROTECT,
        related_name="provided_services",
    )
    territory = models.ForeignKey(
        Organisation,
        verbose_name=_("territoire (EPCI)"),
        on_delete=models.PROTECT,
        related_name="territory_services",
        limit_choices_to={"kind": OrganisationKind.EPCI},
        help_text=_("L'EPCI dont les agents gèrent ce service et ses coûts."),
    )
    kind = models.CharField(_("type de mission"), max_length=12, choices=ServiceKind.choices)
    unit_type = models.ForeignKey(
        UnitType,
        verbose_name=_("unité de fonctionnement de référence"),
        on_delete=models.PROTECT,
        related_name="services",
    )
    description = models.TextField(_("description"), blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("service mutualisé")
        verbose_name_plural = _("services mutualisés")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["territory", "code"],
                name="one_service_code_per_territory",
                violation_error_message=_("Ce territoire a déjà un service de ce code."),
            )
        ]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    MANAGER = "MANAGER", _("Gestionnaire des conventions")
    FINANCE = "FINANCE", _("Agent des finances")
    COMMUNE_READER = "COMMUNE_READER", _("Lecteur de la commune")
    ADMINISTRATOR = "ADMINISTRATOR", _("Administrateur")


# Roles held by staff of the EPCI, who work on the whole territory.
EPCI_ROLES = (Role.MANAGER, Role.FINANCE, Role.ADMINISTRATOR)


class Membership(models.Model):
    """A user's role in an organisation: the single source of what the user may see and do."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("utilisateur"),
        on_delete=models.CASCADE,
        related_name="memberships",
    )
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="user_memberships",
    )
    role = models.CharField(_("rôle"), max_length=16, choices=Role.choices)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("rôle d'un utilisateur")
        verbose_name_plural = _("rôles des utilisateurs")
        ordering = ["user__username", "organisation__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organisation", "role"], name="one_role_per_user_and_organisation"
            ),
        ]

    def __str__(self):
        return gettext("%(user)s — %(role)s (%(organisation)s)") % {
            "user": self.user,
            "role": self.get_role_display(),
            "organisation": self.organisation,
        }

    def clean(self):
        if not (self.organisation_id and self.role):
            return
        if self.role in EPCI_ROLES and self.organisation.kind != OrganisationKind.EPCI:
            raise ValidationError(
                {
                    "organisation": _("Le rôle « %(role)s » s'exerce au sein de l'EPCI.")
                    % {"role": self.get_role_display()}
                }
            )
        if self.role == Role.COMMUNE_READER and self.organisation.kind == OrganisationKind.EPCI:
            raise ValidationError(
                {
                    "organisation": _(
                        "Un lecteur de commune est rattaché à une commune, pas à l'EPCI."
                    )
                }
            )


class DocumentAccess(models.Model):
    """Who downloaded or exported which document, and when (statement PDFs and ZIPs, exports,
    convention PDFs, signed scans): visible to administrators, kept
    ``MUTUALIS_AUDIT_RETENTION_DAYS`` days (CNIL: 6 to 12 months), purged by
    ``manage.py purge_document_accesses``."""

    at = models.DateTimeField(_("le"), auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("utilisateur"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    username = models.CharField(_("identifiant"), max_length=150)
    document = models.CharField(_("document"), max_length=300)
    path = models.CharField(_("adresse"), max_length=500)

    class Meta:
        verbose_name = _("téléchargement de document")
        verbose_name_plural = _("téléchargements de documents")
        ordering = ["-at"]

    def __str__(self):
        return f"{self.username} — {self.document}"
