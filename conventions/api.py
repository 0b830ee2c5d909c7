"""Conventions in the REST API (/api/v1/conventions/, /api/v1/open-data/): read through the
user's scope (a convention the user may not see is a 404), the PDF as the screens give it, and
the open-data export of the conventions in force. See mutualisation/api.py."""

import csv
import io
from datetime import date

from django.db.models import Count, Prefetch
from django.forms import CheckboxInput
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, permissions, serializers, viewsets
from rest_framework.decorators import action, api_view, permission_classes, throttle_classes
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from conventions import forms, views
from conventions.models import (
    Convention,
    ConventionService,
    Deliberation,
    Party,
    Status,
    Terms,
    Vote,
)
from conventions.serializers import (
    ConventionListSerializer,
    ConventionSerializer,
    DeliberationSerializer,
)
from conventions.services import StaleVersion, TransitionRefused, in_force, records, transitions
from conventions.services.in_force import direction_of, parties_on, services_on
from mutualisation.forms import RowsConflict
from mutualisation.rest import DocumentActionsMixin, ErrorSerializer, Refused
from mutualisation.spreadsheets import safe_text


class PartyInputSerializer(serializers.Serializer):
    organisation = serializers.IntegerField()
    role = serializers.CharField()


class ServiceInputSerializer(serializers.Serializer):
    service = serializers.IntegerField()
    unit_type = serializers.IntegerField(required=False, allow_null=True)
    allocation_key = serializers.CharField(required=False, allow_blank=True)
    population_vintage = serializers.IntegerField(required=False, allow_null=True)


class ConventionInputSerializer(serializers.Serializer):
    """A new draft convention, as the creation form takes it (the same validation, field by
    field): its text, its initial terms, its parties and its services."""

    territory = serializers.IntegerField(
        required=False, help_text="L'EPCI, si l'agent en suit plusieurs."
    )
    title = serializers.CharField()
    kind = serializers.CharField()
    object = serializers.CharField()
    preamble = serializers.CharField(required=False, allow_blank=True)
    managing_organisation = serializers.IntegerField(required=False, allow_null=True)
    start_date = serializers.CharField(help_text="AAAA-MM-JJ")
    retroactivity_reason = serializers.CharField(required=False, allow_blank=True)
    retained_service_basis = serializers.CharField(required=False, allow_blank=True)
    clect_report_on = serializers.CharField(required=False, allow_blank=True)
    terms = serializers.DictField(help_text="Les conditions initiales (champs de Terms).")
    parties = PartyInputSerializer(many=True)
    services = ServiceInputSerializer(many=True)


def form_data(payload: dict, formsets) -> QueryDict:
    """The API's JSON as the creation form's POST: the convention's fields, ``terms-*``, and
    each formset's rows with its management form, so that the screens' forms validate it."""
    data = QueryDict(mutable=True)
    nested = {"terms", *formsets}
    for name, value in payload.items():
        if name not in nested and value is not None:
            data[name] = str(value)
    for name, value in (payload.get("terms") or {}).items():
        if value is not None:
            data[f"terms-{name}"] = str(value).lower() if isinstance(value, bool) else str(value)
    for prefix in formsets:
        rows = payload.get(prefix) or []
        data[f"{prefix}-TOTAL_FORMS"] = str(len(rows))
        data[f"{prefix}-INITIAL_FORMS"] = "0"
        for index, row in enumerate(rows):
            for name, value in row.items():
                if value is not None:
                    data[f"{prefix}-{index}-{name}"] = str(value)
    return data


def form_errors(main, terms_form, formsets) -> dict[str, list[str]]:
    """Every form error, named by its path in the JSON (``terms.periodicity_months``,
    ``parties.1.role``, ``parties`` for a rule on all the parties)."""
    found: dict[str, list[str]] = {}
    for name, errors in (main.errors if main is not None else {}).items():
        found["non_field_errors" if name == "__all__" else name] = list(errors)
    for name, errors in (terms_form.errors if terms_form is not None else {}).items():
        found["terms" if name == "__all__" else f"terms.{name}"] = list(errors)
    for prefix, formset in formsets.items():
        if formset.non_form_errors():
            found[prefix] = list(formset.non_form_errors())
        for index, errors in enumerate(formset.errors):
            for name, messages in errors.items():
                key = f"{prefix}.{index}" if name == "__all__" else f"{prefix}.{index}.{name}"
                found[key] = list(messages)
    return found


class ConventionChangeSerializer(serializers.Serializer):
    """A draft convention's changes (PATCH): its text and its initial terms; ``version``, the
    one read, refuses a change made since (409). Checked by the edit form (every error at
    once), so only the shape is checked here."""

    version = serializers.IntegerField(required=False)
    title = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.CharField(required=False, allow_blank=True)
    object = serializers.CharField(required=False, allow_blank=True)
    preamble = serializers.CharField(required=False, allow_blank=True)
    managing_organisation = serializers.IntegerField(required=False, allow_null=True)
    start_date = serializers.CharField(required=False, allow_blank=True, help_text="AAAA-MM-JJ")
    retroactivity_reason = serializers.CharField(required=False, allow_blank=True)
    retained_service_basis = serializers.CharField(required=False, allow_blank=True)
    clect_report_on = serializers.CharField(required=False, allow_blank=True)
    terms = serializers.DictField(required=False)

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {
                    name: [_("Ce champ ne se modifie pas par l'API : utilisez l'écran.")]
                    for name in sorted(unknown)
                }
            )
        return attrs


def posted_value(field, value):
    """A form field's value as a browser would post it (None: not posted)."""
    if isinstance(field.widget, CheckboxInput):
        return "on" if value else None
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def current_form_data(main, terms_form, formsets) -> QueryDict:
    """The unbound forms' current values, as the edit form would post them unchanged."""
    data = QueryDict(mutable=True)

    def put(form):
        for name, field in form.fields.items():
            value = posted_value(field, form[name].value())
            if value is not None:
                data[form.add_prefix(name)] = value

    put(main)
    put(terms_form)
    for prefix, formset in formsets.items():
        rows = formset.initial_forms
        data[f"{prefix}-TOTAL_FORMS"] = data[f"{prefix}-INITIAL_FORMS"] = str(len(rows))
        for form in rows:
            put(form)
    return data


class DeliberationInputSerializer(serializers.Serializer):
    organisation = serializers.IntegerField()
    assembly = serializers.CharField()
    date = serializers.CharField(help_text="AAAA-MM-JJ")
    number = serializers.CharField()
    object = serializers.CharField(required=False, allow_blank=True)
    vote = serializers.CharField(required=False, help_text="ADOPTED (par défaut) ou REJECTED")
    votes_for = serializers.IntegerField(required=False, allow_null=True)
    votes_against = serializers.IntegerField(required=False, allow_null=True)
    abstentions = serializers.IntegerField(required=False, allow_null=True)
    link = serializers.CharField(required=False, allow_blank=True)
    designates_manager = serializers.BooleanField(required=False, default=False)


class DeliberationsInputSerializer(serializers.Serializer):
    deliberations = DeliberationInputSerializer(many=True)


class PublicityInputSerializer(serializers.Serializer):
    transmitted_on = serializers.CharField(required=False, allow_blank=True)
    acknowledgement_number = serializers.CharField(required=False, allow_blank=True)
    published_on = serializers.CharField(required=False, allow_blank=True)


class ConventionPublicityInputSerializer(serializers.Serializer):
    transmitted_on = serializers.CharField(help_text="AAAA-MM-JJ")
    acknowledgement_number = serializers.CharField()
    notified_on = serializers.CharField(help_text="AAAA-MM-JJ")


class TransitionSerializer(serializers.Serializer):
    signature_date = serializers.DateField(
        required=False, help_text="Date de signature (transition « sign »)."
    )


class TransitionRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    target = serializers.CharField()
    missing = serializers.ListField(child=serializers.CharField())


class ConventionViewSet(
    DocumentActionsMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Conventions the user may see: their territories' (staff), those their organisation is
    party to (a commune's reader: its own only)."""

    api_description = _(
        "Conventions visibles : celles des territoires de l'utilisateur (personnel), celles "
        "dont son organisation est partie (lecteur d'une commune : les siennes seulement)."
    )
    lookup_field = "reference"
    lookup_value_regex = "[^/]+"
    filterset_fields = ["status", "kind", "territory"]

    def get_queryset(self):
        queryset = (
            Convention.objects.visible_to(self.request.user)
            .select_related("territory", "managing_organisation")
            .order_by("reference")
        )
        if self.action == "list":
            return queryset
        return queryset.prefetch_related(
            Prefetch(
                "parties", Party.objects.select_related("organisation", "joined_by", "left_by")
            ),
            "services__service",
            "services__added_by",
            "services__removed_by",
            "terms__amendment",
            Prefetch(
                "deliberations", Deliberation.objects.select_related("organisation", "amendment")
            ),
            "amendments",
        )

    def get_serializer_class(self):
        return ConventionListSerializer if self.action == "list" else ConventionSerializer

    @extend_schema(
        description=_(
            "Crée un projet de convention (gestionnaires) : validé par les règles mêmes du "
            "formulaire de création, numéroté dans son territoire ; chaque erreur est nommée par "
            "son chemin dans le JSON (« terms.periodicity_months », « parties.1.role »)."
        ),
        request=ConventionInputSerializer,
        responses={201: ConventionSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
    )
    def create(self, request):
        """Create a draft convention (managers): validated by the same forms as the screen,
        numbered in its territory; every error named by its path."""
        if not request.user.has_perm("conventions.add_convention"):
            raise PermissionDenied
        ConventionInputSerializer(data=request.data).is_valid(raise_exception=True)
        convention, terms = Convention(), Terms()
        blank = views.convention_forms_for(None, request.user, convention, terms)[2]
        data = form_data(request.data, list(blank))
        main, terms_form, formsets = views.convention_forms_for(
            data, request.user, convention, terms
        )
        if not views.convention_forms_valid(main, terms_form, formsets):
            raise ValidationError(form_errors(main, terms_form, formsets))
        try:
            created = records.convention_create(
                convention=main.save(commit=False),
                terms=terms_form.save(commit=False),
                user=request.user,
                formsets=formsets.values(),
            )
        except RowsConflict as conflict:
            raise Refused(str(conflict)) from conflict
        self.kwargs["reference"] = created.reference
        return Response(
            ConventionSerializer(self.get_object(), context={"request": request}).data,
            status=201,
        )

    @extend_schema(
        description=_(
            "Modifie un projet de convention (brouillon ou en consultation) : son texte et ses "
            "conditions initiales, validés par les règles du formulaire de modification ; "
            "« version », celle lue, refuse une modification faite entre-temps (409). Les "
            "parties, services, délibérations et prévisions se modifient à l'écran."
        ),
        request=ConventionChangeSerializer,
        responses={200: ConventionSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
    )
    def partial_update(self, request, reference=None):
        convention = self.get_object()
        if not request.user.has_perm("conventions.change_convention", convention):
            raise PermissionDenied
        if not convention.is_editable:
            raise Refused(_("Une convention délibérée ne se modifie plus que par avenant."))
        changes = ConventionChangeSerializer(data=request.data)
        changes.is_valid(raise_exception=True)
        terms = in_force.initial_terms(convention)
        data = current_form_data(*views.convention_forms_for(None, request.user, convention, terms))
        for name, value in request.data.items():
            if name != "terms":
                data.pop(name, None)
                if value is not None:
                    data[name] = str(value)
        terms_fields = forms.TermsForm.base_fields
        for name, value in (request.data.get("terms") or {}).items():
            key = f"terms-{name}"
            data.pop(key, None)
            posted = posted_value(terms_fields[name], value) if name in terms_fields else str(value)
            if posted is not None:
                data[key] = posted
        main, terms_form, formsets = views.convention_forms_for(
            data, request.user, convention, terms
        )
        if not views.convention_forms_valid(main, terms_form, formsets):
            raise ValidationError(form_errors(main, terms_form, formsets))
        try:
            records.convention_update(
                convention=convention,
                expected_version=main.cleaned_data["version"],
                forms=[main, terms_form, *formsets.values()],
            )
        except StaleVersion as stale:
            raise Refused(records.stale_version_message(convention)) from stale
        except RowsConflict as conflict:
            raise Refused(str(conflict)) from conflict
        return Response(ConventionSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(
        description=_(
            "Enregistre les délibérations des parties sur la convention (gestionnaires du "
            "territoire, tant que la convention n'est pas délibérée), validées par les règles "
            "de l'écran ; tout ou rien, chaque erreur à son chemin (« deliberations.1.date »)."
        ),
        request=DeliberationsInputSerializer,
        responses={201: DeliberationSerializer(many=True), 400: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], url_path="deliberations")
    def deliberations(self, request, reference=None):
        convention = self.get_object()
        if not request.user.has_perm("conventions.change_convention", convention):
            raise PermissionDenied
        if not convention.is_editable:
            raise Refused(records.deliberations_closed_message(convention))
        rows = DeliberationsInputSerializer(data=request.data)
        rows.is_valid(raise_exception=True)
        data = form_data(
            {"deliberations": [dict(row) for row in request.data["deliberations"]]},
            ["deliberations"],
        )
        for index, row in enumerate(request.data["deliberations"]):
            data.pop(f"deliberations-{index}-designates_manager", None)
            if row.get("designates_manager"):
                data[f"deliberations-{index}-designates_manager"] = "on"
            if not row.get("vote"):  # adopted unless said otherwise, as the screen offers
                data[f"deliberations-{index}-vote"] = Vote.ADOPTED
        formset = forms.NewDeliberationFormSet(
            data,
            instance=convention,
            prefix="deliberations",
            form_kwargs={"convention": convention},
        )
        if not formset.is_valid():
            raise ValidationError(form_errors(None, None, {"deliberations": formset}))
        try:
            saved = records.deliberations_add(convention=convention, formset=formset)
        except TransitionRefused as refused:
            raise Refused(" ".join(refused.missing), refused.missing) from refused
        except RowsConflict as conflict:
            raise Refused(str(conflict)) from conflict
        return Response(DeliberationSerializer(saved, many=True).data, status=201)

    @extend_schema(
        description=_(
            "Enregistre la transmission d'une délibération au contrôle de légalité (date, "
            "accusé de réception) et sa publication (CGCT L2131-1), qui la rendent exécutoire."
        ),
        request=PublicityInputSerializer,
        responses={200: DeliberationSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliberations/(?P<deliberation>[0-9]+)/publicity",
    )
    def deliberation_publicity(self, request, reference=None, deliberation=None):
        convention = self.get_object()
        if not request.user.has_perm("conventions.change_convention", convention):
            raise PermissionDenied
        record = get_object_or_404(
            Deliberation.objects.select_related("organisation", "amendment"),
            convention=convention,
            pk=deliberation,
        )
        if record.amendment_id is None and convention.status in views.CLOSED_TO_PUBLICITY:
            raise Refused(
                _("La convention est %(status)s : son caractère exécutoire est déjà établi.")
                % {"status": convention.get_status_display().lower()}
            )
        PublicityInputSerializer(data=request.data).is_valid(raise_exception=True)
        data = QueryDict(mutable=True)
        for name in ("transmitted_on", "acknowledgement_number", "published_on"):
            current = getattr(record, name)
            value = request.data.get(name, current)
            if value not in (None, ""):
                data[name] = value.isoformat() if isinstance(value, date) else str(value)
        form = forms.DeliberationPublicityForm(data, instance=record)
        if not form.is_valid():
            raise ValidationError(form_errors(form, None, {}))
        records.related_save(convention=convention, form=form, user=request.user)
        record.refresh_from_db()
        return Response(DeliberationSerializer(record).data)

    @extend_schema(
        description=_(
            "Enregistre la transmission de la convention signée au contrôle de légalité (date, "
            "accusé de réception) et sa notification aux parties, qui la rendent exécutoire ; "
            "refusée (409) avec ce qui manque."
        ),
        request=ConventionPublicityInputSerializer,
        responses={200: ConventionSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], url_path="publicity")
    def publicity(self, request, reference=None):
        convention = self.get_object()
        if not request.user.has_perm("conventions.change_convention", convention):
            raise PermissionDenied
        ConventionPublicityInputSerializer(data=request.data).is_valid(raise_exception=True)
        form = forms.ConventionPublicityForm(
            {
                name: str(request.data.get(name, ""))
                for name in ("transmitted_on", "acknowledgement_number", "notified_on")
            }
        )
        if not form.is_valid():
            raise ValidationError(form_errors(form, None, {}))
        try:
            records.convention_publicity_record(convention=convention, **form.cleaned_data)
        except TransitionRefused as refused:
            raise Refused(" ".join(refused.missing), refused.missing) from refused
        return Response(ConventionSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(
        description=_(
            "Applique une transition légale (submit, withdraw, deliberate, sign, "
            "enter_into_force, expire) par les mêmes contrôles que les écrans ; refusée : 409 "
            "avec la liste de tout ce qui manque (« missing »). Gestionnaires du territoire."
        ),
        request=TransitionSerializer,
        responses={200: ConventionSerializer, 409: TransitionRefusedSerializer},
    )
    @action(detail=True, methods=["post"], url_path=r"transitions/(?P<name>[a-z_]+)")
    def transition(self, request, reference=None, name=None):
        """Apply a legal transition (submit, withdraw, deliberate, sign, enter_into_force,
        expire) through the same gates as the screens: refused, 409 with the French list of
        everything missing. Managers of the convention's territory."""
        convention = self.get_object()
        if not request.user.has_perm("conventions.change_convention", convention):
            raise PermissionDenied
        if name not in transitions.TRANSITIONS:
            raise NotFound(_("Transition inconnue : %(name)s.") % {"name": name})
        data = TransitionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            convention = transitions.convention_transition(
                convention, name, signature_date=data.validated_data.get("signature_date")
            )
        except TransitionRefused as refused:
            target = Status(refused.target).label if refused.target in Status.values else ""
            raise Refused(
                _("Passage au statut « %(target)s » refusé : il manque %(count)s élément(s).")
                % {"target": target or refused.target, "count": len(refused.missing)},
                refused.missing,
                target=str(refused.target),
                code="transition_refused",
            ) from refused
        return Response(ConventionSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(
        description=_("PDF de la convention : le projet avant signature, l'acte signé ensuite."),
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter(
                "version",
                str,
                enum=["consolidee"],
                description="« consolidee » : la version consolidée au jour (après signature).",
            )
        ],
    )
    @action(detail=True, url_path="pdf")
    def pdf(self, request, reference=None):
        """The convention's PDF: the projet before signature, the signed act afterwards."""
        convention = self.get_object()
        return views.convention_pdf_response(request._request, convention)


class OpenPartySerializer(serializers.Serializer):
    name = serializers.CharField()
    siren = serializers.CharField()
    role = serializers.CharField()


class OpenServiceSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class OpenDeliberationSerializer(serializers.Serializer):
    organisation = serializers.CharField()
    date = serializers.DateField()
    number = serializers.CharField()
    vote = serializers.CharField()
    link = serializers.CharField(allow_blank=True)


class OpenConventionSerializer(serializers.Serializer):
    """A convention in force as the open-data portal publishes it: public acts only."""

    reference = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.CharField()
    direction = serializers.CharField(allow_null=True)
    territory = serializers.CharField()
    territory_siren = serializers.CharField()
    start_date = serializers.DateField()
    signature_date = serializers.DateField(allow_null=True)
    parties = OpenPartySerializer(many=True)
    services = OpenServiceSerializer(many=True)
    deliberations = OpenDeliberationSerializer(many=True)


def in_force_conventions(territory_siren: str = ""):
    """The conventions in force (status « en vigueur »), by reference, with what their public
    data reads: iterating over a slice of it (a page) costs the same few queries whatever its
    size (the slice, then its parties, services and deliberations)."""
    conventions = (
        Convention.objects.filter(status=Status.IN_FORCE)
        .select_related("territory")
        .prefetch_related(
            Prefetch(
                "parties",
                Party.objects.select_related("organisation", "joined_by", "left_by"),
            ),
            Prefetch(
                "services",
                ConventionService.objects.select_related("service", "added_by", "removed_by"),
            ),
            Prefetch("deliberations", Deliberation.objects.select_related("organisation")),
        )
        .order_by("reference")
    )
    if territory_siren:
        conventions = conventions.filter(territory__siren=territory_siren)
    return conventions


def open_convention(c: Convention, today: date | None = None) -> dict:
    """A convention in force as public data: its parties and services of today, as the signed
    acts made them (an avenant not signed yet is a project, not published as the convention's),
    and the approving deliberations (organisation, date, number, link); no agent nor person."""
    today = today or timezone.localdate()
    parties = parties_on(c, today)
    return {
        "reference": c.reference,
        "title": c.title,
        "kind": c.kind,
        "direction": direction_of(parties),
        "territory": c.territory.name,
        "territory_siren": c.territory.siren,
        "start_date": c.start_date,
        "signature_date": c.signature_date,
        "parties": [
            {"name": p.organisation.name, "siren": p.organisation.siren, "role": p.role}
            for p in parties
        ],
        "services": [
            {"code": line.service.code, "name": line.service.name} for line in services_on(c, today)
        ],
        "deliberations": [
            {
                "organisation": d.organisation.name,
                "date": d.date,
                "number": d.number,
                "vote": d.vote,
                "link": d.link,
            }
            for d in c.deliberations.all()
        ],
    }


def open_conventions(territory_siren: str = "") -> list[dict]:
    """The public data of the conventions in force (of one EPCI, by its SIREN, if given)."""
    return [open_convention(c) for c in in_force_conventions(territory_siren)]


OPEN_CSV_COLUMNS = [
    "reference",
    "title",
    "kind",
    "direction",
    "territory",
    "territory_siren",
    "start_date",
    "signature_date",
    "parties",
    "services",
    "deliberations",
]


def open_conventions_csv(rows: list[dict]) -> str:
    """One line per convention; parties, services and deliberations joined by « ; »."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(OPEN_CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            safe_text(cell)
            for cell in [
                row["reference"],
                row["title"],
                row["kind"],
                row["direction"] or "",
                row["territory"],
                row["territory_siren"],
                row["start_date"].isoformat(),
                row["signature_date"].isoformat() if row["signature_date"] else "",
                " ; ".join(f"{p['name']} ({p['siren']}, {p['role']})" for p in row["parties"]),
                " ; ".join(f"{s['code']} {s['name']}" for s in row["services"]),
                " ; ".join(
                    f"{d['organisation']} n° {d['number']} du {d['date'].isoformat()}"
                    for d in row["deliberations"]
                ),
            ]
        )
    return out.getvalue()


OPEN_DATA_PARAMETERS = [
    OpenApiParameter("territory", str, description="SIREN de l'EPCI (tous sinon)."),
]
OPEN_DATA_TERRITORIES = "/api/v1/open-data/territories.json"


class OpenDataConventions(generics.ListAPIView):
    """Open data: the conventions in force, public acts, a page at a time (the API's page
    size rules). Without authentication."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [AnonRateThrottle]
    serializer_class = OpenConventionSerializer
    filter_backends = []  # ``territory`` only, read below

    def get_queryset(self):
        return in_force_conventions(self.request.query_params.get("territory", ""))

    @extend_schema(
        operation_id="open_data_conventions_json",
        description=_(
            "Données ouvertes : les conventions en vigueur, actes publics seulement (docs/api.md), "
            "par pages (`page`, `page_size` : 50 par défaut, au plus 500). Sans authentification."
        ),
        parameters=OPEN_DATA_PARAMETERS,
    )
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        rows = [open_convention(c) for c in page]
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)


class OpenTerritorySerializer(serializers.Serializer):
    siren = serializers.CharField()
    name = serializers.CharField()
    conventions = serializers.IntegerField(help_text="Nombre de conventions en vigueur.")
    json = serializers.URLField()
    csv = serializers.URLField()


@extend_schema(
    operation_id="open_data_territories",
    description=_(
        "Données ouvertes : les EPCI qui ont des conventions en vigueur, avec leur nombre et "
        "les adresses de leurs données (JSON, CSV). Sans authentification."
    ),
    responses={200: OpenTerritorySerializer(many=True)},
)
@api_view(["GET"])
@permission_classes([permissions.AllowAny])
@throttle_classes([AnonRateThrottle])
def open_data_territories(request):
    """Open data: the EPCIs with conventions in force (one row each: a deployment hosts at most
    the country's EPCIs), their count and where their data is. One query."""
    rows = (
        Convention.objects.filter(status=Status.IN_FORCE)
        .order_by("territory__siren")
        .values("territory__siren", "territory__name")
        .annotate(conventions=Count("pk"))
    )
    as_json = request.build_absolute_uri(reverse("api:open-data-conventions"))
    as_csv = request.build_absolute_uri(reverse("api:open-data-conventions-csv"))
    return Response(
        [
            {
                "siren": row["territory__siren"],
                "name": row["territory__name"],
                "conventions": row["conventions"],
                "json": f"{as_json}?territory={row['territory__siren']}",
                "csv": f"{as_csv}?territory={row['territory__siren']}",
            }
            for row in rows
        ]
    )


class OpenDataConventionsCsv(APIView):
    """Open data: the conventions in force of one EPCI (``territory``, required), public acts,
    as CSV (UTF-8, « ; »). Without authentication. One territory at a time: the file is built in
    one response, so its size is bounded by one EPCI's conventions, not the deployment's (the
    national data is the JSON's, page by page)."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [AnonRateThrottle]

    def perform_content_negotiation(self, request, force=False):
        # The CSV whatever the client accepts (``Accept: text/csv`` included, which DRF's JSON
        # renderer alone answered 406); a refusal (401, 429) in the JSON error shape.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="open_data_conventions_csv",
        description=_(
            "Données ouvertes en CSV (UTF-8, « ; ») : les conventions en vigueur d'un EPCI "
            "(paramètre `territory` obligatoire ; la liste : /api/v1/open-data/territories.json), "
            "actes publics seulement (docs/api.md). Sans authentification."
        ),
        parameters=[
            OpenApiParameter(
                "territory",
                str,
                required=True,
                description="SIREN de l'EPCI (liste : /api/v1/open-data/territories.json).",
            )
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request):
        territory = request.query_params.get("territory", "").strip()
        if not territory:
            raise ValidationError(
                {
                    "territory": [
                        _(
                            "Le paramètre « territory » (SIREN de l'EPCI) est obligatoire pour "
                            "le CSV. La liste des EPCI et de leurs fichiers : %(url)s ; toutes "
                            "les conventions en vigueur : /api/v1/open-data/conventions.json, "
                            "page par page."
                        )
                        % {"url": OPEN_DATA_TERRITORIES}
                    ]
                }
            )
        rows = open_conventions(territory)
        response = HttpResponse(open_conventions_csv(rows), content_type="text/csv; charset=utf-8")
        day = timezone.localdate().isoformat()
        response["Content-Disposition"] = f'attachment; filename="conventions-{day}.csv"'
        return response


router = SimpleRouter()
router.register("conventions", ConventionViewSet, basename="convention")

urlpatterns = [
    path(
        "open-data/conventions.json",
        OpenDataConventions.as_view(),
        name="open-data-conventions",
    ),
    path("open-data/territories.json", open_data_territories, name="open-data-territories"),
    path(
        "open-data/conventions.csv",
        OpenDataConventionsCsv.as_view(),
        name="open-data-conventions-csv",
    ),
    *router.urls,
]
