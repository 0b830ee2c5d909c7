"""Forms of the conventions screens: shape of the input and French messages, no legal rules
(those are the gates in conventions/services/gates.py)."""

import hashlib

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.forms import inlineformset_factory
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from conventions.models import (
    AgentAssignment,
    AllocationKey,
    Amendment,
    Attachment,
    Convention,
    ConventionKind,
    ConventionService,
    Deliberation,
    ImpactSheet,
    ManagingShare,
    Party,
    PartyRole,
    Scheme,
    SchemeAction,
    SchemeOpinion,
    SettlementMode,
    StaffBodyOpinion,
    Termination,
    Terms,
    UsageForecast,
    Vote,
    roles_for,
)
from conventions.services.gates import MAX_PERIODICITY_MONTHS
from conventions.services.in_force import TERMS_FIELDS
from conventions.services.scheme import (
    mandate_communes,
    member_communes,
    opinion_deadline,
    overlapping,
)
from mutualisation.collation import FrenchOrder
from mutualisation.forms import Form, InlineFormSet, ModelForm, finite_decimals
from mutualisation.french import of
from mutualisation.models import (
    EpciMembership,
    Organisation,
    OrganisationKind,
    Service,
    UnitType,
)
from mutualisation.rules import territories_of

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def date_widgets(*names):
    return {name: DateInput() for name in names}


class TerritoryChoice:
    """A form whose record belongs to one territory, chosen once among the user's: the staff of
    one EPCI have nothing to choose; a record keeps the territory it was created in."""

    def choose_territory(self, territories) -> None:
        if self.instance.territory_id or territories is None:
            del self.fields["territory"]
        elif len(territories) == 1:
            del self.fields["territory"]
            self.instance.territory = territories[0]
        else:
            self.fields["territory"].queryset = territories

    def _post_clean(self):
        if "territory" in self.cleaned_data:
            self.instance.territory = self.cleaned_data["territory"]
        super()._post_clean()


class ConventionForm(TerritoryChoice, ModelForm):
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Convention
        fields = [
            "title",
            "kind",
            "object",
            "preamble",
            "managing_organisation",
            "start_date",
            "retroactivity_reason",
            "retained_service_basis",
            "clect_report_on",
        ]
        widgets = {
            **date_widgets("start_date", "clect_report_on"),
            "object": forms.Textarea(attrs={"rows": 3}),
            "preamble": forms.Textarea(attrs={"rows": 3}),
            "retroactivity_reason": forms.Textarea(attrs={"rows": 2}),
        }

    territory = forms.ModelChoiceField(
        label=_("Territoire (EPCI)"),
        queryset=Organisation.objects.none(),
        help_text=_("L'EPCI dont les agents suivront la convention ; il la numérote."),
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["managing_organisation"].help_text = _(
            "Pour un service commun : l'EPCI, ou la commune désignée par délibération de l'EPCI."
        )
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version
        territories = territories_of(user).order_by(FrenchOrder("name")) if user else None
        if self.instance.territory_id:
            self.fields["managing_organisation"].queryset = party_choices(
                Organisation.objects.filter(pk=self.instance.territory_id)
            )
        elif territories is not None:
            self.fields["managing_organisation"].queryset = party_choices(territories)
        self.choose_territory(territories)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") != ConventionKind.SERVICE_COMMUN:
            # Only a service commun has a managing organisation: the field (hidden for the
            # other types in the browser, pre-filled with the EPCI) is left empty for them.
            cleaned["managing_organisation"] = None
        return cleaned


class TermsForm(ModelForm):
    class Meta:
        model = Terms
        formfield_callback = finite_decimals
        fields = list(TERMS_FIELDS)
        widgets = {
            **date_widgets("end_date"),
            "unit_cost_method": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, start_date=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.start_date = start_date
        self.fields["periodicity_months"].help_text = _("12 mois au plus (D5211-16).")

    def clean_periodicity_months(self):
        months = self.cleaned_data["periodicity_months"]
        if months > MAX_PERIODICITY_MONTHS:
            raise ValidationError(
                _("La périodicité des remboursements ne peut dépasser 12 mois (D5211-16).")
            )
        return months

    def clean(self):
        cleaned = super().clean()
        end_date = cleaned.get("end_date")
        if end_date and self.start_date and end_date <= self.start_date:
            self.add_error("end_date", _("L'échéance doit suivre la date de prise d'effet."))
        if cleaned.get("settlement_mode") in (
            SettlementMode.AC_IMPUTATION,
            SettlementMode.MIXED,
        ) and cleaned.get("instalment_count"):
            self.add_error(
                "instalment_count",
                _(
                    "Réglée sur l'attribution de compensation, la prévision n'est pas appelée en "
                    "acomptes : indiquez 0."
                ),
            )
        mode, value = cleaned.get("managing_share_mode"), cleaned.get("managing_share_value")
        if mode in ("", ManagingShare.NONE) and value is not None:
            self.add_error(
                "managing_share_value",
                _("Sans participation du gestionnaire, laissez la part ou pondération vide."),
            )
        elif mode == ManagingShare.FIXED_PERCENT and (value is None or not 0 <= value <= 100):
            self.add_error(
                "managing_share_value",
                _("Indiquez la part fixe du gestionnaire, un pourcentage entre 0 et 100."),
            )
        elif mode == ManagingShare.WEIGHT and (value is None or value < 0):
            self.add_error(
                "managing_share_value",
                _("Indiquez la pondération du gestionnaire dans la clé (positive ou nulle)."),
            )
        return cleaned


class ConventionServiceForm(ModelForm):
    class Meta:
        model = ConventionService
        fields = ["service", "unit_type", "allocation_key", "population_vintage"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unit_type"].required = False
        self.fields["unit_type"].help_text = _("Par défaut, l'unité de référence du service.")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("service") and not cleaned.get("unit_type"):
            cleaned["unit_type"] = cleaned["service"].unit_type
            self.instance.unit_type = cleaned["unit_type"]
        return cleaned


class DeliberationForm(ModelForm):
    link = forms.URLField(
        label=_("Lien vers l'acte"), required=False, assume_scheme="https", max_length=200
    )

    class Meta:
        model = Deliberation
        fields = [
            "organisation",
            "assembly",
            "date",
            "number",
            "object",
            "vote",
            "votes_for",
            "votes_against",
            "abstentions",
            "link",
            "designates_manager",
        ]
        widgets = date_widgets("date")

    def __init__(self, *args, convention=None, **kwargs):
        super().__init__(*args, **kwargs)
        if convention is not None and convention.pk:
            # Only the parties deliberate on the convention.
            self.fields["organisation"].queryset = Organisation.objects.filter(
                parties__convention=convention
            ).order_by(FrenchOrder("name"))

    def clean_date(self):
        return not_in_the_future(self.cleaned_data.get("date"))

    def clean(self):
        cleaned = super().clean()
        vote, for_, against = (
            cleaned.get("vote"),
            cleaned.get("votes_for"),
            cleaned.get("votes_against"),
        )
        if for_ is not None and against is not None:
            if vote == Vote.ADOPTED and for_ < against:
                self.add_error(
                    "vote",
                    _("Une délibération adoptée ne peut avoir moins de voix pour que contre."),
                )
            elif vote == Vote.REJECTED and for_ > against:
                self.add_error(
                    "vote",
                    _("Une délibération rejetée ne peut avoir plus de voix pour que contre."),
                )
        return cleaned


class DeliberationPublicityForm(ModelForm):
    """What makes a deliberation enforceable: its transmission to the préfecture (date and
    accusé de réception) and its publication (CGCT L2131-1)."""

    class Meta:
        model = Deliberation
        fields = ["transmitted_on", "acknowledgement_number", "published_on"]
        widgets = date_widgets("transmitted_on", "published_on")

    def clean_transmitted_on(self):
        return not_in_the_future(self.cleaned_data.get("transmitted_on"))

    def clean_published_on(self):
        return not_in_the_future(self.cleaned_data.get("published_on"))

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("transmitted_on")
            and not (cleaned.get("acknowledgement_number") or "").strip()
        ):
            self.add_error(
                "acknowledgement_number",
                _("Indiquez le n° de l'accusé de réception délivré par la préfecture."),
            )
        session = self.instance.date
        for name, message in (
            ("transmitted_on", _("Une délibération ne peut être transmise avant sa séance.")),
            ("published_on", _("Une délibération ne peut être publiée avant sa séance.")),
        ):
            if cleaned.get(name) and session and cleaned[name] < session:
                self.add_error(name, message)
        return cleaned


class ConventionPublicityForm(Form):
    """The signed convention's transmission to the contrôle de légalité and its notification."""

    transmitted_on = forms.DateField(
        label=_("Transmise au contrôle de légalité le"), widget=DateInput()
    )
    acknowledgement_number = forms.CharField(
        label=_("N° d'accusé de réception (préfecture)"), max_length=60
    )
    notified_on = forms.DateField(label=_("Notifiée aux parties le"), widget=DateInput())

    def clean_transmitted_on(self):
        return not_in_the_future(self.cleaned_data.get("transmitted_on"))

    def clean_notified_on(self):
        return not_in_the_future(self.cleaned_data.get("notified_on"))


# The most rows a formset builds, whatever its management form claims (a forged TOTAL_FORMS of
# 10**20 made Django build and render 2,000 rows: 19 s and a 4 MB page). The largest EPCI
# counts about 160 communes.
MAX_PARTIES = 200
MAX_SERVICES = 50
MAX_FORECASTS = 1000


def party_choices(territories):
    """Who may be party to a convention of ``territories``: the EPCIs, their member communes
    (past and present), the attached bodies and syndicates, and any organisation already party
    to one of their conventions."""
    members = EpciMembership.objects.filter(epci__in=territories).values("member_id")
    parties = Party.objects.filter(convention__territory__in=territories).values("organisation_id")
    return Organisation.objects.filter(
        Q(pk__in=territories.values("pk"))
        | Q(pk__in=members)
        | Q(pk__in=parties)
        | Q(kind__in=[OrganisationKind.ATTACHED_BODY, OrganisationKind.SYNDICATE])
    ).order_by(FrenchOrder("name"))


class SharedChoicesFormSet(InlineFormSet):
    """An inline formset whose rows share their lists of choices: each list (organisations,
    services…) is read once for the formset, not once per row."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        shared = self.__dict__.setdefault("_shared_choices", {})
        for name, field in form.fields.items():
            # (a hidden field, such as a row's id, renders no list)
            if isinstance(field, forms.ModelChoiceField) and not field.widget.is_hidden:
                if name not in shared:
                    shared[name] = list(field.choices)
                field.choices = shared[name]
        return form


# The code of the refusal of a service commun's managing organisation that is not a member.
MANAGER_NOT_MEMBER = "manager_not_member"


class BasePartyFormSet(SharedChoicesFormSet):
    """The parties of a convention, shaped by its type (``kind``, set by the view once the
    convention's form is read): only the roles the type allows are offered, and a role it
    forbids is refused with its reason; a service commun's managing organisation
    (``managing_organisation``) must be one of its members."""

    kind = None
    managing_organisation = None

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if self.kind and not self.is_bound:
            allowed = roles_for(self.kind)
            form.fields["role"].choices = [
                choice
                for choice in form.fields["role"].choices
                if not choice[0] or choice[0] in allowed
            ]
        return form

    def kept_forms(self) -> list:
        """The rows that will be parties once saved: filled in, valid, not deleted."""
        return [
            form
            for form in self.forms
            if hasattr(form, "cleaned_data")
            and form.cleaned_data.get("organisation")
            and not self._should_delete_form(form)
        ]

    def clean(self):
        super().clean()
        if not self.kind:
            return
        allowed = roles_for(self.kind)
        for form in self.kept_forms():
            role = form.cleaned_data.get("role")
            if not role or role in allowed:
                continue
            if self.kind == ConventionKind.SERVICE_COMMUN:
                message = _(
                    "Les parties d'un service commun en sont membres : « %(role)s » n'est pas un "
                    "rôle possible pour ce type de convention."
                ) % {"role": PartyRole(role).label}
            else:
                message = _(
                    "« %(role)s » est réservé aux services communs : choisissez prestataire ou "
                    "bénéficiaire."
                ) % {"role": PartyRole(role).label}
            form.add_error("role", message)
        managing = self.managing_organisation
        if self.kind == ConventionKind.SERVICE_COMMUN and managing is not None:
            members = {form.cleaned_data["organisation"] for form in self.kept_forms()}
            if managing not in members:
                raise forms.ValidationError(
                    _(
                        "L'organisation gestionnaire doit être membre du service commun : ajoutez "
                        "%(name)s aux parties ou choisissez un des membres."
                    )
                    % {"name": managing.name},
                    code=MANAGER_NOT_MEMBER,
                )


def manager_refusal_at_its_field(main, parties) -> None:
    """Say the refusal of a managing organisation outside the service commun's members at the
    field the person chose in the convention's form (marked in error, and linked from the
    summary of errors), not among the parties'. Once both are validated."""
    kept, moved = [], []
    for error in parties.non_form_errors().as_data():
        (moved if error.code == MANAGER_NOT_MEMBER else kept).append(error)
    if moved:
        parties._non_form_errors = parties.error_class(
            kept, error_class="nonform", renderer=parties.renderer
        )
        main.add_error("managing_organisation", moved)


PartyFormSet = inlineformset_factory(
    Convention,
    Party,
    formset=BasePartyFormSet,
    fields=["organisation", "role"],
    extra=1,
    can_delete=True,
    max_num=MAX_PARTIES,
    absolute_max=MAX_PARTIES,
)
# A new convention has at least a provider and a beneficiary: offer three empty rows.
NewPartyFormSet = inlineformset_factory(
    Convention,
    Party,
    formset=BasePartyFormSet,
    fields=["organisation", "role"],
    extra=3,
    can_delete=False,
    max_num=MAX_PARTIES,
    absolute_max=MAX_PARTIES,
)
ServiceFormSet = inlineformset_factory(
    Convention,
    ConventionService,
    form=ConventionServiceForm,
    formset=SharedChoicesFormSet,
    extra=1,
    can_delete=True,
    max_num=MAX_SERVICES,
    absolute_max=MAX_SERVICES,
)


class BaseDeliberationFormSet(SharedChoicesFormSet):
    """Deliberations on the convention itself (those of avenants are entered with them)."""

    def get_queryset(self):
        # Kept: the formset asks for it once per row (a new queryset each time was a query
        # per row).
        if not hasattr(self, "_convention_deliberations"):
            self._convention_deliberations = super().get_queryset().filter(amendment__isnull=True)
        return self._convention_deliberations


DeliberationFormSet = inlineformset_factory(
    Convention,
    Deliberation,
    form=DeliberationForm,
    formset=BaseDeliberationFormSet,
    extra=1,
    can_delete=True,
    max_num=MAX_PARTIES,
    absolute_max=MAX_PARTIES,
)


class NewDeliberationForm(DeliberationForm):
    """A row of the page adding deliberations: it comes pre-filled with a party; left as it
    came (whatever party it names), it is no deliberation and is ignored."""

    def has_changed(self):
        return any(name != "organisation" for name in self.changed_data)


class BaseNewDeliberationFormSet(SharedChoicesFormSet):
    """New deliberations on the convention, a row per party named in ``initial`` (one blank row
    without it): the rows filled in are saved together, the others ignored; a row's ``legend``
    names its party (« Délibération d'Aubière »)."""

    def __init__(self, *args, initial=None, **kwargs):
        self.extra = len(initial or ()) or 1
        super().__init__(*args, initial=initial, **kwargs)

    def get_queryset(self):
        return self.model.objects.none()

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        organisation = form.initial.get("organisation")
        names = self.__dict__.setdefault("_party_names", dict(form.fields["organisation"].choices))
        name = names.get(organisation)
        form.legend = (
            _("Délibération %(of_organisation)s") % {"of_organisation": of(name)}
            if name
            else _("Délibération d'une partie")
        )
        return form

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        if not any(form.has_changed() for form in self.forms):
            raise ValidationError(
                _(
                    "Renseignez au moins une délibération : une ligne laissée telle quelle est "
                    "ignorée."
                )
            )


NewDeliberationFormSet = inlineformset_factory(
    Convention,
    Deliberation,
    form=NewDeliberationForm,
    formset=BaseNewDeliberationFormSet,
    extra=1,
    can_delete=False,
    max_num=MAX_PARTIES,
    absolute_max=MAX_PARTIES,
)


class UsageForecastForm(ModelForm):
    class Meta:
        model = UsageForecast
        formfield_callback = finite_decimals
        fields = ["service", "beneficiary", "year", "units", "fixed_share_percent"]
        localized_fields = ["units", "fixed_share_percent"]

    def __init__(self, *args, convention=None, **kwargs):
        super().__init__(*args, **kwargs)
        if convention is not None:
            self.fields["service"].queryset = convention.services.select_related(
                "service", "unit_type"
            )
            self.fields["beneficiary"].queryset = Organisation.objects.filter(
                parties__convention=convention
            )


ForecastFormSet = inlineformset_factory(
    Terms,
    UsageForecast,
    form=UsageForecastForm,
    formset=SharedChoicesFormSet,
    extra=2,
    can_delete=True,
    max_num=MAX_FORECASTS,
    absolute_max=MAX_FORECASTS,
)


def not_in_the_future(day):
    if day is not None and day > timezone.localdate():
        raise ValidationError(_("Cette date ne peut être dans le futur."))
    return day


class OpinionForm(ModelForm):
    """A staff-body opinion: given for one of the convention's parties, on a past date."""

    class Meta:
        model = StaffBodyOpinion
        fields = ["organisation", "body", "body_name", "date", "opinion"]
        widgets = date_widgets("date")

    def __init__(self, *args, convention=None, **kwargs):
        super().__init__(*args, **kwargs)
        # The convention's parties, and only them (offered and accepted): without its
        # convention, the form offers no organisation rather than every one of the territory.
        self.fields["organisation"].queryset = (
            Organisation.objects.filter(parties__convention=convention).order_by(
                FrenchOrder("name")
            )
            if convention is not None
            else Organisation.objects.none()
        )

    def clean_date(self):
        return not_in_the_future(self.cleaned_data.get("date"))


class ImpactSheetForm(ModelForm):
    class Meta:
        model = ImpactSheet
        fields = [
            "established_on",
            "organisation_and_working_conditions",
            "pay",
            "acquired_rights",
            "agreements",
        ]
        widgets = date_widgets("established_on")


class AgentForm(ModelForm):
    class Meta:
        model = AgentAssignment
        formfield_callback = finite_decimals
        fields = [
            "agent_ref",
            "job_title",
            "employer",
            "regime",
            "share_percent",
            "functional_authority",
            "hierarchical_authority",
            "agent_consent",
            "start_date",
            "end_date",
        ]
        widgets = date_widgets("start_date", "end_date")
        localized_fields = ["share_percent"]

    def __init__(self, *args, convention=None, **kwargs):
        super().__init__(*args, **kwargs)
        if convention is not None:
            self.instance.convention = convention


class AttachmentForm(ModelForm):
    """A signed scan: PDF only, at most 10 Mo, and it must really be a readable PDF."""

    class Meta:
        model = Attachment
        fields = ["title", "file"]
        widgets = {"file": forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"})}

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_ATTACHMENT_BYTES:
            raise ValidationError(
                _("Le fichier pèse %(size)s ; la limite est de %(limit)s.")
                % {
                    "size": filesizeformat(upload.size),
                    "limit": filesizeformat(MAX_ATTACHMENT_BYTES),
                }
            )
        if not upload.name.lower().endswith(".pdf"):
            raise ValidationError(_("Seuls les fichiers PDF sont acceptés (extension .pdf)."))
        content = upload.read()
        upload.seek(0)
        if not content.startswith(b"%PDF-"):
            raise ValidationError(
                _("Ce fichier n'est pas un PDF : son contenu ne commence pas par %PDF.")
            )
        try:
            pages = len(PdfReader(upload).pages)
        except (PdfReadError, ValueError, KeyError, TypeError):
            pages = 0
        upload.seek(0)
        if pages == 0:
            raise ValidationError(_("Ce PDF est illisible ou ne contient aucune page."))
        self.instance.size = upload.size
        self.instance.sha256 = hashlib.sha256(content).hexdigest()
        return upload


class RecordsField(forms.ModelMultipleChoiceField):
    """A choice of several records: an id beyond the database's integers is an invalid choice
    like any other (SQLite raised OverflowError on a 20-digit id: a 500 instead of a message)."""

    def _check_values(self, value):
        for pk in value:
            try:
                number = int(str(pk))
            except (TypeError, ValueError):
                continue  # not a number: the parent says why
            if not -(2**63) <= number < 2**63:
                raise ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": pk},
                )
        return super()._check_values(value)


class AmendmentForm(ModelForm):
    """An avenant: its object and date, and what it changes besides the terms: communes that
    join or leave, a service added or withdrawn; for a service commun, the updated fiche
    d'impact."""

    joining = RecordsField(
        label=_("Communes qui entrent dans la convention"),
        queryset=Organisation.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    leaving = RecordsField(
        label=_("Parties qui sortent de la convention"),
        queryset=Party.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    new_service = forms.ModelChoiceField(
        label=_("Service ajouté"), queryset=Service.objects.none(), required=False
    )
    new_unit_type = forms.ModelChoiceField(
        label=_("Unité de fonctionnement du service ajouté"),
        queryset=UnitType.objects.all(),
        required=False,
    )
    new_allocation_key = forms.ChoiceField(
        label=_("Clé de répartition du service ajouté (service commun)"),
        choices=[("", "—"), *AllocationKey.choices],
        required=False,
    )
    new_population_vintage = forms.IntegerField(
        label=_("Millésime de population (clé de population)"), required=False, min_value=1990
    )
    removed_services = RecordsField(
        label=_("Services retirés"),
        queryset=ConventionService.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    field_order = [
        "object",
        "effective_from",
        "joining",
        "leaving",
        "new_service",
        "new_unit_type",
        "new_allocation_key",
        "new_population_vintage",
        "removed_services",
        "impact_established_on",
        "impact_summary",
    ]

    class Meta:
        model = Amendment
        fields = ["object", "effective_from", "impact_established_on", "impact_summary"]
        widgets = {
            **date_widgets("effective_from", "impact_established_on"),
            "object": forms.Textarea(attrs={"rows": 3}),
            "impact_summary": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, convention=None, **kwargs):
        super().__init__(*args, **kwargs)
        if convention is None:
            return
        parties = convention.parties.filter(left_by__isnull=True)
        present = list(parties.select_related("organisation"))
        epci = next((p.organisation for p in present if p.organisation.is_epci), None)
        self.fields["joining"].queryset = (
            Organisation.objects.filter(epci_memberships__epci=epci)
            .exclude(parties__convention=convention)
            .distinct()
            .order_by(FrenchOrder("name"))
            if epci
            else Organisation.objects.none()
        )
        keeper = convention.managing_organisation
        self.fields["leaving"].queryset = (
            parties.exclude(role=PartyRole.PROVIDER)
            .exclude(organisation=keeper)
            .select_related("organisation")
        )
        self.fields["leaving"].label_from_instance = lambda party: party.organisation.name
        owner = keeper or next(
            (p.organisation for p in present if p.role == PartyRole.PROVIDER), None
        )
        self.fields["new_service"].queryset = (
            Service.objects.filter(provider=owner, territory_id=convention.territory_id).exclude(
                convention_lines__convention=convention
            )
            if owner
            else Service.objects.none()
        )
        self.fields["removed_services"].queryset = convention.services.filter(
            removed_by__isnull=True
        ).select_related("service", "unit_type")
        if convention.kind != ConventionKind.SERVICE_COMMUN:
            for name in (
                "impact_established_on",
                "impact_summary",
                "new_allocation_key",
                "new_population_vintage",
            ):
                del self.fields[name]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_service") and not cleaned.get("new_unit_type"):
            self.add_error(
                "new_unit_type", _("Indiquez l'unité de fonctionnement du service ajouté.")
            )
        if cleaned.get("new_allocation_key") == AllocationKey.POPULATION and not cleaned.get(
            "new_population_vintage"
        ):
            self.add_error(
                "new_population_vintage", _("Une clé de population doit nommer son millésime.")
            )
        return cleaned

    def new_services(self) -> list:
        service = self.cleaned_data.get("new_service")
        if not service:
            return []
        return [
            ConventionService(
                service=service,
                unit_type=self.cleaned_data["new_unit_type"],
                allocation_key=self.cleaned_data.get("new_allocation_key") or "",
                population_vintage=self.cleaned_data.get("new_population_vintage"),
            )
        ]


class SignatureForm(Form):
    signature_date = forms.DateField(label=_("Date de signature"), widget=DateInput())


class TerminationForm(ModelForm):
    class Meta:
        model = Termination
        fields = [
            "notified_on",
            "effective_on",
            "requested_by",
            "reason",
            "agents_outcome",
            "assets_outcome",
        ]
        widgets = {
            **date_widgets("notified_on", "effective_on"),
            "reason": forms.Textarea(attrs={"rows": 2}),
            "agents_outcome": forms.Textarea(attrs={"rows": 3}),
            "assets_outcome": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, convention=None, **kwargs):
        super().__init__(*args, **kwargs)
        if convention is not None:
            self.fields["requested_by"].queryset = Organisation.objects.filter(
                parties__convention=convention
            )

    def validate_constraints(self, exclude=None):
        # The convention is attached by the service; its constraints are checked there.
        return super().validate_constraints(exclude={*(exclude or ()), "convention"})


# --- the schéma de mutualisation -----------------------------------------------------------------

# A mandate's years (municipal elections every six years); a typing slip is refused.
FIRST_MANDATE_YEAR, LAST_MANDATE_YEAR = 2014, 2100
MAX_MANDATE_YEARS = 7


class SchemeForm(TerritoryChoice, ModelForm):
    """The scheme's title, mandate and orientations; its territory is chosen once, among the
    user's (the staff of one EPCI have nothing to choose)."""

    territory = forms.ModelChoiceField(
        label=_("Territoire (EPCI)"), queryset=Organisation.objects.none()
    )

    class Meta:
        model = Scheme
        fields = ["title", "first_year", "last_year", "summary"]
        widgets = {"summary": forms.Textarea(attrs={"rows": 5})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["summary"].help_text = _(
            "Les grandes orientations du schéma, telles que le rapport du président les expose."
        )
        for name in ("first_year", "last_year"):
            self.fields[name].min_value = FIRST_MANDATE_YEAR
            self.fields[name].max_value = LAST_MANDATE_YEAR
            self.fields[name].widget.attrs.update(
                {"min": FIRST_MANDATE_YEAR, "max": LAST_MANDATE_YEAR}
            )
        territories = territories_of(user).order_by(FrenchOrder("name")) if user else None
        self.choose_territory(territories)

    def _get_validation_exclusions(self):
        # The territory is set by the form, not typed: one scheme per territory and mandate is
        # still checked (and said in French) before saving.
        exclude = super()._get_validation_exclusions()
        if self.instance.territory_id:
            exclude.discard("territory")
        return exclude

    def clean(self):
        cleaned = super().clean()
        first, last = cleaned.get("first_year"), cleaned.get("last_year")
        if first is None or last is None:
            return cleaned
        for name, year in (("first_year", first), ("last_year", last)):
            if not FIRST_MANDATE_YEAR <= year <= LAST_MANDATE_YEAR:
                self.add_error(
                    name,
                    _("Indiquez une année entre %(first)s et %(last)s.")
                    % {"first": FIRST_MANDATE_YEAR, "last": LAST_MANDATE_YEAR},
                )
        if last < first:
            self.add_error("last_year", _("La dernière année du mandat précède la première."))
        elif last - first > MAX_MANDATE_YEARS:
            self.add_error(
                "last_year",
                _("Un mandat dure six ans : le schéma couvre au plus %(years)s années.")
                % {"years": MAX_MANDATE_YEARS + 1},
            )
        else:
            probe = Scheme(
                pk=self.instance.pk,
                territory_id=self.instance.territory_id
                or getattr(cleaned.get("territory"), "pk", None),
                first_year=first,
                last_year=last,
            )
            other = overlapping(probe).first() if probe.territory_id else None
            if other is not None:
                self.add_error(
                    None,
                    _(
                        "Le mandat %(first)s-%(last)s chevauche celui du schéma « %(other)s » "
                        "(%(other_first)s-%(other_last)s) : un seul schéma par mandat."
                    )
                    % {
                        "first": first,
                        "last": last,
                        "other": other.title,
                        "other_first": other.first_year,
                        "other_last": other.last_year,
                    },
                )
        if last >= first and self.instance.pk:
            outside = self.instance.actions.exclude(target_year__range=(first, last)).order_by(
                "target_year", "title"
            )
            if outside:
                self.add_error(
                    None,
                    _(
                        "Ces actions visent une année hors du mandat %(first)s-%(last)s ; "
                        "modifiez-les d'abord : %(actions)s."
                    )
                    % {
                        "first": first,
                        "last": last,
                        "actions": ", ".join(
                            f"{action.title} ({action.target_year})" for action in outside
                        ),
                    },
                )
        return cleaned


def offer_territory_conventions(field, territory_id) -> None:
    """The conventions an action of the scheme may cite: its territory's, named in full."""
    field.queryset = Convention.objects.filter(territory_id=territory_id).order_by("reference")
    field.label_from_instance = lambda convention: (
        f"{convention.reference} — {convention.title} ({convention.get_status_display()})"
    )


class SchemeActionForm(ModelForm):
    """An action of the scheme: the communes among the territory's members over the mandate,
    the conventions among the territory's; its year within the mandate (the model's rule)."""

    communes = RecordsField(
        label=_("Communes concernées"),
        queryset=Organisation.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    conventions = RecordsField(
        label=_("Conventions qui la réalisent"),
        queryset=Convention.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = SchemeAction
        formfield_callback = finite_decimals
        fields = [
            "title",
            "description",
            "service",
            "kind",
            "communes",
            "horizon",
            "target_year",
            "expected_fte_change",
            "expected_cost_change",
            "status",
            "progress_note",
            "conventions",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "progress_note": forms.Textarea(attrs={"rows": 3}),
        }
        localized_fields = ["expected_fte_change", "expected_cost_change"]

    def __init__(self, *args, scheme=None, **kwargs):
        super().__init__(*args, **kwargs)
        if scheme is not None:
            self.instance.scheme = scheme
        scheme = self.instance.scheme if self.instance.scheme_id else None
        if scheme is None:
            for name in ("service", "communes", "conventions"):
                self.fields[name].queryset = self.fields[name].queryset.none()
            return
        self.fields["service"].queryset = Service.objects.filter(
            territory_id=scheme.territory_id
        ).order_by(FrenchOrder("name"))
        self.fields["communes"].queryset = mandate_communes(scheme).order_by(FrenchOrder("name"))
        offer_territory_conventions(self.fields["conventions"], scheme.territory_id)
        self.fields["target_year"].help_text = _(
            "Comprise dans le mandat (%(first)s-%(last)s)."
        ) % {"first": scheme.first_year, "last": scheme.last_year}
        self.fields["target_year"].widget.attrs.update(
            {"min": scheme.first_year, "max": scheme.last_year}
        )


class SchemeActionProgressForm(ModelForm):
    """An action of a transmitted (or approved) scheme: what the councils gave their opinion on
    no longer changes; its progress and the conventions that realise it do."""

    conventions = RecordsField(
        label=_("Conventions qui la réalisent"),
        queryset=Convention.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = SchemeAction
        fields = ["status", "progress_note", "conventions"]
        widgets = {"progress_note": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        offer_territory_conventions(self.fields["conventions"], self.instance.scheme.territory_id)


class SchemeOpinionForm(ModelForm):
    """A member commune's council's opinion on the submitted project, once per commune, within
    the three months (after them, the opinion is deemed favourable: L5211-39-1)."""

    class Meta:
        model = SchemeOpinion
        fields = ["commune", "date", "deliberation_number", "opinion"]
        widgets = date_widgets("date")

    def __init__(self, *args, scheme=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.scheme = scheme
        communes = (
            [c.pk for c in member_communes(scheme, scheme.submitted_on)]
            if scheme is not None and scheme.submitted_on
            else []
        )
        given = scheme.opinions.values("commune_id") if scheme is not None else []
        self.fields["commune"].queryset = (
            Organisation.objects.filter(pk__in=communes)
            .exclude(pk__in=given)
            .order_by(FrenchOrder("name"))
        )
        self.fields["commune"].error_messages["invalid_choice"] = _(
            "Choisissez une commune membre consultée sur le projet et qui n'a pas encore rendu "
            "son avis (une commune donne un seul avis)."
        )

    def clean_date(self):
        day = not_in_the_future(self.cleaned_data.get("date"))
        scheme = self.instance.scheme
        submitted = scheme.submitted_on if scheme else None
        if day is not None and submitted is not None and day < submitted:
            raise ValidationError(
                _(
                    "Le conseil municipal ne peut avoir délibéré avant la transmission du "
                    "projet (%(date)s)."
                )
                % {"date": submitted.strftime("%d/%m/%Y")}
            )
        deadline = opinion_deadline(scheme) if scheme else None
        if day is not None and deadline is not None and day > deadline:
            raise ValidationError(
                _(
                    "Délibération postérieure au délai de trois mois (jusqu'au %(deadline)s) : "
                    "l'avis de la commune est réputé favorable."
                )
                % {"deadline": deadline.strftime("%d/%m/%Y")}
            )
        return day


class SchemeSubmitForm(Form):
    on = forms.DateField(label=_("Projet transmis aux conseils municipaux le"), widget=DateInput())

    def clean_on(self):
        return not_in_the_future(self.cleaned_data.get("on"))


class SchemeAdoptForm(Form):
    on = forms.DateField(label=_("Date de la délibération d'approbation"), widget=DateInput())
    number = forms.CharField(label=_("N° de la délibération"), max_length=40)

    def clean_on(self):
        return not_in_the_future(self.cleaned_data.get("on"))
