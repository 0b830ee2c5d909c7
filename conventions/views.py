"""Screens of the conventions: list, detail with timeline and history, create and edit with
inline formsets, legal transitions, avenants, termination, related records and the PDF."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q, prefetch_related_objects
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from conventions import forms, services
from conventions.filters import ConventionFilter
from conventions.models import (
    Amendment,
    Convention,
    ConventionKind,
    Deliberation,
    ImpactSheet,
    Party,
    Scheme,
    SchemeAction,
    SchemeStatus,
    StaffBodyOpinion,
    Status,
    Terms,
)
from conventions.services import (
    adhesions,
    amendments,
    documents,
    gates,
    in_force,
    overview,
    records,
    staff,
    transitions,
)
from conventions.services import scheme as schemes
from conventions.tables import ConventionTable
from mutualisation import spreadsheets
from mutualisation.collation import FrenchOrder
from mutualisation.converters import year_choices
from mutualisation.forms import RowsConflict, carry_version
from mutualisation.french import of
from mutualisation.models import Organisation, OrganisationKind, Service
from mutualisation.rules import (
    chosen_territory,
    home_territories,
    own_communes,
    scope_of,
    territories_of,
)
from mutualisation.services import record_document_access
from mutualisation.tables import configure
from mutualisation.views import pager

ALERT_DAYS = 90
# The list shows the first alerts (by date) and counts the others.
ALERTS_SHOWN = 20
# Once in force (or ended), how the convention became enforceable is settled history.
CLOSED_TO_PUBLICITY = (Status.IN_FORCE, Status.TERMINATED, Status.EXPIRED)


def get_convention(request, reference, perm="conventions.view_convention"):
    """A convention the user may see (404 otherwise, so its existence is not revealed), with
    ``perm`` checked on it (403)."""
    convention = get_object_or_404(
        Convention.objects.visible_to(request.user).select_related("managing_organisation"),
        reference=reference,
    )
    if not request.user.has_perm(perm, convention):
        raise PermissionDenied
    return convention


@login_required
def convention_list(request):
    if not scope_of(request.user).has_any_role:
        return render(request, "mutualisation/no_role.html", status=403)
    visible = Convention.objects.visible_to(request.user)
    filterset = ConventionFilter(
        request.GET,
        queryset=visible.prefetch_related(
            Prefetch(
                "parties", Party.objects.select_related("organisation", "joined_by", "left_by")
            )
        ),
        user=request.user,
    )
    # The columns shown, not the long texts (object, preamble…), for the page's rows only.
    table = ConventionTable(filterset.qs.only(*ConventionTable.LOADED))
    configure(request, table, per_page=25)
    context = {"filter": filterset, "table": table}
    if request.htmx:
        return render(request, "conventions/_convention_table.html", context)
    found = overview.alerts(within_days=ALERT_DAYS, conventions=visible)
    context["alerts"] = found[:ALERTS_SHOWN]
    context["more_alerts"] = len(found) - len(context["alerts"])
    context["alert_days"] = ALERT_DAYS
    return render(request, "conventions/convention_list.html", context)


# The organisations the searchable filter offers for what is typed (conventions:organisations).
ORGANISATIONS_FOUND = 20


@login_required
def organisation_search(request):
    """The organisations the user may see whose name contains, or whose SIREN starts with, the
    typed text: at most ``ORGANISATIONS_FOUND``, as JSON, for the list's organisation filter."""
    if not scope_of(request.user).has_any_role:
        raise PermissionDenied
    typed = request.GET.get("q", "").strip()[:200]
    results = []
    if typed and "\x00" not in typed:
        matching = Q(name__icontains=typed)
        if typed.isascii() and typed.isdigit():
            matching |= Q(siren__startswith=typed)
        results = [
            {"siren": siren, "name": name, "kind": OrganisationKind(kind).label}
            for siren, name, kind in Organisation.objects.visible_to(request.user)
            .filter(matching)
            .order_by("name", "siren")
            .values_list("siren", "name", "kind")[:ORGANISATIONS_FOUND]
        ]
    return JsonResponse({"results": results})


def fixes(convention, gap, amendment=None) -> list[tuple[str, str]]:
    """Where each item a gap names is fixed, as (link text, address): the pages that fix it
    for the convention's status (none when its status closes them), an avenant's own pages for
    a gap of its signature."""
    code = getattr(gap, "code", "")
    reference = convention.reference

    def each(text, url):
        return [
            (text % {"of_organisation": of(organisation)}, f"{url}?organisation={organisation.pk}")
            for organisation in gap.organisations
        ]

    if code == gates.DELIBERATION_MISSING:
        if amendment is not None:
            url = reverse("conventions:amendment-deliberation", args=[reference, amendment.number])
        elif convention.is_editable:
            url = reverse("conventions:deliberation-add", args=[reference])
        else:
            return []
        return each(_("Saisir la délibération %(of_organisation)s"), url)
    if code == gates.FORECAST_MISSING:
        if amendment is not None:
            url = reverse("conventions:amendment-forecasts", args=[reference, amendment.number])
        elif convention.is_editable:
            url = reverse("conventions:edit", args=[reference])
        else:
            return []
        return [(_("Saisir les prévisions d'utilisation"), f"{url}#previsions")]
    if code == gates.OPINION_MISSING and amendment is None and convention.is_editable:
        url = reverse("conventions:add-related", args=[reference, "avis"])
        return each(_("Saisir l'avis de l'instance %(of_organisation)s"), url)
    if code == gates.IMPACT_SHEET_MISSING and amendment is None and convention.is_editable:
        url = reverse("conventions:add-related", args=[reference, "fiche-impact"])
        return [(_("Saisir la fiche d'impact"), url)]
    if (
        code == gates.DELIBERATION_PUBLICITY_MISSING
        and convention.status not in CLOSED_TO_PUBLICITY
    ):
        return [
            (
                _("Enregistrer la transmission et la publication de la délibération n° %(number)s")
                % {"number": deliberation.number},
                reverse("conventions:deliberation-publicity", args=[reference, deliberation.pk]),
            )
            for deliberation in gap.records
        ]
    if code == gates.CONVENTION_PUBLICITY_MISSING and convention.status == Status.SIGNED:
        return [
            (
                _("Enregistrer la transmission et la notification de la convention"),
                reverse("conventions:publicity", args=[reference]),
            )
        ]
    return []


def with_fixes(convention, gaps, amendment=None) -> list[dict]:
    """The gaps as the detail page lists them: each sentence with the links that fix it."""
    return [{"text": gap, "fixes": fixes(convention, gap, amendment)} for gap in gaps]


def detail_context(request, convention):
    context = {
        "convention": convention,
        **overview.convention_overview(convention),
        "can_edit": request.user.has_perm("conventions.change_convention", convention),
    }
    context["next_gaps"] = with_fixes(convention, context["next_gaps"])
    return context


@login_required
def convention_detail(request, reference):
    convention = get_convention(request, reference)
    return render(
        request, "conventions/convention_detail.html", detail_context(request, convention)
    )


def convention_forms(request, convention, terms):
    data = request.POST if request.method == "POST" else None
    return convention_forms_for(data, request.user, convention, terms)


def convention_forms_for(data, user, convention, terms):
    """The convention's form, its terms' and its formsets (parties, services; once created,
    deliberations and forecasts), bound to ``data``: the screens' and the API's."""
    main = forms.ConventionForm(data, instance=convention, user=user)
    terms_form = forms.TermsForm(data, instance=terms, prefix="terms")
    if main.is_bound and main.is_valid():
        terms_form.start_date = main.cleaned_data["start_date"]
    else:
        terms_form.start_date = convention.start_date
    territories = (
        Organisation.objects.filter(pk=convention.territory_id)
        if convention.territory_id
        else territories_of(user)
    )
    # A new convention of the usual kind, for the staff of one EPCI: the EPCI is a party (and
    # would manage a service commun) until they choose otherwise.
    epci = territories[0] if not convention.pk and len(territories) == 1 else None
    if epci is not None and not main.is_bound and not main.initial.get("managing_organisation"):
        main.initial["managing_organisation"] = epci.pk
    parties = (forms.PartyFormSet if convention.pk else forms.NewPartyFormSet)(
        data,
        instance=convention,
        prefix="parties",
        choices={"organisation": forms.party_choices(territories)},
        initial=[{"organisation": epci.pk}] if epci is not None else None,
    )
    # The type shapes the parties: read from the form once valid, else the convention's own
    # (a new convention's type is chosen on the page: the browser filters the roles then).
    if main.is_bound and main.is_valid():
        parties.kind = main.cleaned_data["kind"]
        parties.managing_organisation = main.cleaned_data.get("managing_organisation")
    elif convention.pk:
        parties.kind = convention.kind
    formsets = {
        "parties": parties,
        "services": forms.ServiceFormSet(
            data,
            instance=convention,
            prefix="services",
            choices={"service": Service.objects.filter(territory__in=territories)},
        ),
    }
    if convention.pk:
        formsets["deliberations"] = forms.DeliberationFormSet(
            data,
            instance=convention,
            prefix="deliberations",
            form_kwargs={"convention": convention},
        )
        formsets["forecasts"] = forms.ForecastFormSet(
            data, instance=terms, prefix="forecasts", form_kwargs={"convention": convention}
        )
    return main, terms_form, formsets


def all_valid(*items):
    # A list, not a generator: every form is validated, so every error shows at once.
    return all([item.is_valid() for item in items])  # noqa: C419


def convention_forms_valid(main, terms_form, formsets) -> bool:
    """Whether the convention's form, its terms and its formsets are all valid; each error is
    then said where the person fixes it."""
    valid = all_valid(main, terms_form, *formsets.values())
    forms.manager_refusal_at_its_field(main, formsets["parties"])
    return valid


@login_required
def convention_create(request):
    if not request.user.has_perm("conventions.add_convention"):
        raise PermissionDenied
    convention, terms = Convention(), Terms()
    main, terms_form, formsets = convention_forms(request, convention, terms)
    status = 200
    if request.method == "POST" and convention_forms_valid(main, terms_form, formsets):
        try:
            convention = records.convention_create(
                convention=main.save(commit=False),
                terms=terms_form.save(commit=False),
                user=request.user,
                formsets=formsets.values(),
            )
        except RowsConflict as conflict:
            main.add_error(None, str(conflict))
            status = 409
        else:
            messages.success(
                request, _("Convention %(reference)s créée.") % {"reference": convention.reference}
            )
            return redirect(convention)
    return render(
        request,
        "conventions/convention_form.html",
        {"form": main, "terms_form": terms_form, "formsets": formsets, "creating": True},
        status=status,
    )


@login_required
def convention_edit(request, reference):
    convention = get_convention(request, reference, "conventions.change_convention")
    if not convention.is_editable:
        messages.warning(
            request,
            _("Une convention délibérée ne se modifie plus que par avenant."),
        )
        return redirect(convention)
    terms = in_force.initial_terms(convention)
    main, terms_form, formsets = convention_forms(request, convention, terms)
    status = 200
    if request.method == "POST" and convention_forms_valid(main, terms_form, formsets):
        try:
            records.convention_update(
                convention=convention,
                expected_version=main.cleaned_data["version"],
                forms=[main, terms_form, *formsets.values()],
            )
        except services.StaleVersion:
            main.add_error(None, records.stale_version_message(convention))
            carry_version(main, convention.version)  # read as this request began
            status = 409
        except RowsConflict as conflict:
            main.add_error(None, str(conflict))
            status = 409
        else:
            messages.success(request, _("Convention enregistrée."))
            return redirect(convention)
    return render(
        request,
        "conventions/convention_form.html",
        {"form": main, "terms_form": terms_form, "formsets": formsets, "convention": convention},
        status=status,
    )


@login_required
@require_POST
def convention_transition(request, reference, name):
    convention = get_convention(request, reference, "conventions.change_convention")
    if name not in transitions.TRANSITIONS:
        raise PermissionDenied
    signature_date = None
    if name == "sign":
        form = forms.SignatureForm(request.POST)
        signature_date = form.cleaned_data["signature_date"] if form.is_valid() else None
    try:
        convention = transitions.convention_transition(
            convention, name, signature_date=signature_date
        )
    except services.TransitionRefused as refused:
        context = detail_context(request, convention)
        context["refusal"] = {
            "target": Status(refused.target).label
            if refused.target in Status.values
            else refused.target,
            "missing": with_fixes(convention, refused.missing),
        }
        return render(request, "conventions/convention_detail.html", context, status=409)
    messages.success(
        request,
        _("La convention est désormais « %(status)s ».")
        % {"status": convention.get_status_display()},
    )
    return redirect(convention)


@login_required
def deliberation_add(request, reference):
    """The parties' deliberations on the convention, a row pre-filled per party that has not
    deliberated (``?organisation=`` one of them: its row only), saved together."""
    convention = get_convention(request, reference, "conventions.change_convention")
    if not convention.is_editable:
        messages.error(request, records.deliberations_closed_message(convention))
        return redirect(convention)
    lacking = records.parties_without_deliberation(convention)
    asked = request.GET.get("organisation", "")
    lacking = [o for o in lacking if str(o.pk) == asked] or lacking
    formset = forms.NewDeliberationFormSet(
        request.POST or None,
        instance=convention,
        prefix="deliberations",
        initial=[{"organisation": organisation.pk} for organisation in lacking],
        form_kwargs={"convention": convention},
    )
    status = 200
    if request.method == "POST" and formset.is_valid():
        try:
            saved = records.deliberations_add(convention=convention, formset=formset)
        except services.TransitionRefused as refused:
            messages.error(request, " ".join(refused.missing))
            return redirect(convention)
        except RowsConflict as conflict:
            formset._non_form_errors.append(str(conflict))
            status = 409
        else:
            messages.success(
                request,
                ngettext(
                    "%(count)s délibération enregistrée.",
                    "%(count)s délibérations enregistrées.",
                    len(saved),
                )
                % {"count": len(saved)},
            )
            return redirect(convention)
    return render(
        request,
        "conventions/deliberation_add.html",
        {"convention": convention, "formset": formset},
        status=status,
    )


RELATED_FORMS = {
    "avis": (forms.OpinionForm, _("Avis d'une instance paritaire")),
    "fiche-impact": (forms.ImpactSheetForm, _("Fiche d'impact")),
    "agent": (forms.AgentForm, _("Agent concerné")),
    "piece-jointe": (forms.AttachmentForm, _("Pièce jointe signée (PDF)")),
}


@login_required
def convention_add_related(request, reference, kind):
    convention = get_convention(request, reference, "conventions.change_convention")
    if kind not in RELATED_FORMS:
        raise PermissionDenied
    form_class, title = RELATED_FORMS[kind]
    if kind in ("avis", "fiche-impact") and not convention.is_editable:
        # What the assemblies deliberated on no longer changes, except by avenant.
        messages.error(
            request,
            _(
                "La convention est %(status)s : la fiche d'impact et les avis sur lesquels les "
                "assemblées ont délibéré ne se modifient plus que par avenant."
            )
            % {"status": convention.get_status_display().lower()},
        )
        return redirect(convention)
    instance = None
    if kind == "fiche-impact":
        if convention.kind != ConventionKind.SERVICE_COMMUN:
            raise PermissionDenied
        instance = ImpactSheet.objects.filter(convention=convention).first()
    kwargs = {"instance": instance}
    if kind in ("agent", "avis"):
        kwargs["convention"] = convention
    if kind == "avis":
        kwargs["initial"] = asked_organisation(request)
    form = form_class(request.POST or None, request.FILES or None, **kwargs)
    if request.method == "POST" and form.is_valid():
        records.related_save(convention=convention, form=form, user=request.user)
        messages.success(request, _("Enregistré : %(title)s.") % {"title": title})
        return redirect(convention)
    return related_page(request, convention, form, title)


def asked_organisation(request) -> dict:
    """The party a link from a refusal names (``?organisation=``), as a form's initial value
    (a choice the form does not offer is simply not selected)."""
    asked = request.GET.get("organisation", "")
    return {"organisation": asked} if asked.isascii() and asked.isdigit() else {}


def related_page(request, convention, form, title, **extra):
    """The page of a form attached to a convention (avis, délibération, transmission, …)."""
    return render(
        request,
        "conventions/related_form.html",
        {"convention": convention, "form": form, "title": title, **extra},
    )


RECORDS = {
    # kind in the URL: (model, form, title)
    "avis": (StaffBodyOpinion, forms.OpinionForm, _("Avis d'une instance paritaire")),
    "deliberation": (Deliberation, forms.DeliberationForm, _("Délibération")),
}


def get_record(request, reference, kind, pk):
    convention = get_convention(request, reference, "conventions.change_convention")
    if kind not in RECORDS:
        raise Http404
    model = RECORDS[kind][0]
    record = get_object_or_404(
        model.objects.select_related("amendment", "convention", "organisation"),
        convention=convention,
        pk=pk,
    )
    return convention, record


@login_required
def convention_record_edit(request, reference, kind, pk):
    """Correct an opinion or a deliberation entered wrongly, until the act is deliberated."""
    convention, record = get_record(request, reference, kind, pk)
    if not records.is_open_to_change(record):
        messages.error(request, records.closed_message(record))
        return redirect(convention)
    _model, form_class, title = RECORDS[kind]
    form = form_class(request.POST or None, instance=record, convention=convention)
    if request.method == "POST" and form.is_valid():
        records.related_save(convention=convention, form=form, user=request.user)
        messages.success(request, _("Correction enregistrée : %(title)s.") % {"title": title})
        return redirect(convention)
    return related_page(
        request,
        convention,
        form,
        _("Modifier : %(record)s") % {"record": record},
        delete_url=reverse(
            "conventions:record-delete", args=[convention.reference, kind, record.pk]
        ),
    )


@login_required
@require_POST
def convention_record_delete(request, reference, kind, pk):
    convention, record = get_record(request, reference, kind, pk)
    label = str(record)
    try:
        records.related_delete(convention=convention, record=record)
    except services.TransitionRefused as refused:
        for reason in refused.missing:
            messages.error(request, reason)
    else:
        messages.success(
            request, _("Supprimé : %(record)s (l'historique le conserve).") % {"record": label}
        )
    return redirect(convention)


@login_required
def deliberation_publicity(request, reference, pk):
    """Record a deliberation's transmission to the préfecture and its publication."""
    convention, deliberation = get_record(request, reference, "deliberation", pk)
    if deliberation.amendment_id is None and convention.status in CLOSED_TO_PUBLICITY:
        messages.error(
            request,
            _("La convention est %(status)s : son caractère exécutoire est déjà établi.")
            % {"status": convention.get_status_display().lower()},
        )
        return redirect(convention)
    form = forms.DeliberationPublicityForm(request.POST or None, instance=deliberation)
    if request.method == "POST" and form.is_valid():
        records.related_save(convention=convention, form=form, user=request.user)
        messages.success(request, _("Transmission et publication enregistrées."))
        return redirect(convention)
    return related_page(
        request,
        convention,
        form,
        _("Transmission et publication : %(record)s") % {"record": deliberation},
    )


@login_required
def convention_publicity(request, reference):
    """Record the signed convention's transmission to the préfecture and its notification."""
    convention = get_convention(request, reference, "conventions.change_convention")
    form = forms.ConventionPublicityForm(
        request.POST or None,
        initial={
            "transmitted_on": convention.transmitted_on,
            "acknowledgement_number": convention.acknowledgement_number,
            "notified_on": convention.notified_on,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            records.convention_publicity_record(convention=convention, **form.cleaned_data)
        except services.TransitionRefused as refused:
            for reason in refused.missing:
                form.add_error(None, reason)
        else:
            messages.success(
                request, _("Transmission et notification de la convention enregistrées.")
            )
            return redirect(convention)
    return related_page(
        request, convention, form, _("Transmission au contrôle de légalité et notification")
    )


@login_required
def amendment_create(request, reference):
    convention = get_convention(request, reference, "conventions.change_convention")
    # The terms with their avenant, for the rule that picks those in force (one query).
    prefetch_related_objects(
        [convention], Prefetch("terms", queryset=Terms.objects.select_related("amendment"))
    )
    current = in_force.current_terms(convention)
    form = forms.AmendmentForm(request.POST or None, convention=convention)
    terms_form = forms.TermsForm(
        request.POST or None,
        instance=Terms(**in_force.terms_values(current)),
        prefix="terms",
        start_date=convention.start_date,
    )
    if request.method == "POST" and all_valid(form, terms_form):
        try:
            amendment = amendments.amendment_create(
                convention=convention,
                amendment=form.save(commit=False),
                terms=terms_form.save(commit=False),
                joining=list(form.cleaned_data["joining"]),
                leaving=list(form.cleaned_data["leaving"]),
                new_services=form.new_services(),
                removed_services=list(form.cleaned_data["removed_services"]),
            )
        except services.TransitionRefused as refused:
            for reason in refused.missing:
                form.add_error(None, reason)
        else:
            messages.success(
                request,
                _("Avenant n° %(number)s créé : faites-le délibérer par chaque partie.")
                % {"number": amendment.number},
            )
            return redirect(convention)
    return render(
        request,
        "conventions/amendment_form.html",
        {"convention": convention, "form": form, "terms_form": terms_form},
    )


def get_amendment(request, reference, number):
    convention = get_convention(request, reference, "conventions.change_convention")
    return get_object_or_404(Amendment, convention=convention, number=number)


@login_required
def amendment_deliberation_add(request, reference, number):
    amendment = get_amendment(request, reference, number)
    form = forms.DeliberationForm(
        request.POST or None,
        convention=amendment.convention,
        initial=asked_organisation(request),
    )
    if request.method == "POST" and form.is_valid():
        amendments.amendment_deliberation_add(
            amendment=amendment, deliberation=form.save(commit=False)
        )
        messages.success(request, _("Délibération enregistrée."))
        return redirect(amendment.convention)
    return related_page(
        request,
        amendment.convention,
        form,
        _("Délibération sur l'avenant n° %(number)s") % {"number": amendment.number},
    )


def get_draft_amendment(request, reference, number):
    amendment = get_amendment(request, reference, number)
    if amendment.status != Amendment.AmendmentStatus.DRAFT:
        raise PermissionDenied
    return amendment


@login_required
def amendment_forecasts(request, reference, number):
    """The forecasts of a draft avenant's terms (a commune joining, a service added, new
    figures), checked at signature like the convention's."""
    amendment = get_draft_amendment(request, reference, number)
    convention = amendment.convention
    formset = forms.ForecastFormSet(
        request.POST or None,
        instance=amendment.terms,
        prefix="forecasts",
        form_kwargs={"convention": convention},
    )
    status = 200
    if request.method == "POST" and formset.is_valid():
        try:
            with transaction.atomic():
                formset.save()
                records.bump(convention)
        except RowsConflict as conflict:
            messages.error(request, str(conflict))
            status = 409
        else:
            messages.success(request, _("Prévisions de l'avenant enregistrées."))
            return redirect(convention)
    return render(
        request,
        "conventions/amendment_forecasts.html",
        {"convention": convention, "amendment": amendment, "formset": formset},
        status=status,
    )


@login_required
def amendment_opinion_add(request, reference, number):
    """A staff body's opinion on a draft avenant (service commun changing members/services)."""
    amendment = get_draft_amendment(request, reference, number)
    convention = amendment.convention
    form = forms.OpinionForm(request.POST or None, convention=convention)
    if request.method == "POST" and form.is_valid():
        opinion = form.save(commit=False)
        opinion.amendment = amendment
        records.related_save(convention=convention, form=form, user=request.user, record=opinion)
        messages.success(request, _("Avis enregistré."))
        return redirect(convention)
    return related_page(
        request,
        convention,
        form,
        _("Avis d'instance sur l'avenant n° %(number)s") % {"number": amendment.number},
    )


@login_required
@require_POST
def amendment_sign(request, reference, number):
    amendment = get_amendment(request, reference, number)
    form = forms.SignatureForm(request.POST)
    try:
        if not form.is_valid():
            raise services.TransitionRefused(
                Amendment.AmendmentStatus.SIGNED, [_("Date de signature manquante.")]
            )
        amendments.amendment_sign(amendment, signature_date=form.cleaned_data["signature_date"])
    except services.TransitionRefused as refused:
        context = detail_context(request, amendment.convention)
        context["refusal"] = {
            "target": _("avenant n° %(number)s signé") % {"number": amendment.number},
            "missing": with_fixes(amendment.convention, refused.missing, amendment),
        }
        return render(request, "conventions/convention_detail.html", context, status=409)
    messages.success(request, _("Avenant n° %(number)s signé.") % {"number": amendment.number})
    return redirect(amendment.convention)


@login_required
def convention_terminate(request, reference):
    convention = get_convention(request, reference, "conventions.change_convention")
    form = forms.TerminationForm(request.POST or None, convention=convention)
    if request.method == "POST" and form.is_valid():
        try:
            transitions.convention_terminate(convention, form.save(commit=False))
        except services.TransitionRefused as refused:
            for reason in refused.missing:
                form.add_error(None, reason)
        else:
            messages.success(request, _("Convention résiliée."))
            return redirect(convention)
    return related_page(request, convention, form, _("Résilier la convention"))


@login_required
def attachment_download(request, reference, pk):
    convention = get_convention(request, reference)
    attachment = get_object_or_404(convention.attachments, pk=pk)
    record_document_access(request, f"{convention.reference} — {attachment.title}")
    return FileResponse(
        attachment.file.open("rb"),
        content_type="application/pdf",
        filename=f"{convention.reference}-{attachment.pk}.pdf",
    )


def pdf_response(request, pdf: bytes, filename: str, sha256: str = "") -> HttpResponse:
    record_document_access(request, filename)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    if sha256:
        response["X-Content-SHA256"] = sha256
    return response


@login_required
def convention_pdf(request, reference):
    return convention_pdf_response(request, get_convention(request, reference))


def convention_pdf_response(request, convention) -> HttpResponse:
    """The projet before signature; afterwards the convention as signed (frozen bytes), or with
    ``?version=consolidee`` the version consolidée au jour, labelled so. (The screens' and the
    API's download.)"""
    if request.GET.get("version") == documents.CONSOLIDATED and convention.signature_date:
        pdf = documents.render_convention(convention, mode=documents.CONSOLIDATED)
        return pdf_response(request, pdf, f"{convention.reference}-consolidee.pdf")
    signed = documents.signed_document(convention)
    if signed is not None:
        return pdf_response(
            request, bytes(signed.pdf), f"{convention.reference}-signee.pdf", signed.sha256
        )
    pdf = documents.render_convention(convention)
    return pdf_response(request, pdf, f"{convention.reference}.pdf")


@login_required
def amendment_pdf(request, reference, number):
    """An avenant's own PDF: the projet while in draft, the frozen signed act afterwards."""
    convention = get_convention(request, reference)
    amendment = get_object_or_404(Amendment, convention=convention, number=number)
    name = f"{convention.reference}-avenant-{amendment.number}"
    signed = documents.signed_document(convention, amendment)
    if signed is not None:
        return pdf_response(request, bytes(signed.pdf), f"{name}-signe.pdf", signed.sha256)
    return pdf_response(request, documents.render_amendment(amendment), f"{name}.pdf")


# --- territory-wide tables: adhesions of the communes, staff made available --------------------

# What the tables are exported as: a CSV for French Excel (« ; », BOM) and an XLSX.
TABLE_FORMATS = {"csv": spreadsheets.excel_csv, "xlsx": spreadsheets.xlsx}


def chosen_territory_of(request):
    """The territory a territory-wide table shows (``?territoire=<SIREN>``, else the user's
    first) and the communes whose rows the user may read (None: all). 403 without a role; 404
    for a territory that is not the user's."""
    if not scope_of(request.user).has_any_role:
        raise PermissionDenied
    siren = request.GET.get("territoire", "").strip()[:9] or None
    territory = chosen_territory(request.user, siren)
    if territory is None:
        raise Http404
    return territory, own_communes(request.user, territory)


def table_context(request, territory, year) -> dict:
    territories = list(home_territories(request.user).order_by(FrenchOrder("name")))
    query = f"?territoire={territory.siren}" if len(territories) > 1 else ""
    return {
        "territory": territory,
        "territories": territories if len(territories) > 1 else [],
        "year": year,
        "years": year_choices(),
        "territory_query": query,
    }


def table_file(request, dataset, name: str, fmt: str) -> HttpResponse:
    """A table as a CSV or XLSX download, noted in the download log."""
    spreadsheet = spreadsheets.SPREADSHEET_FORMATS[fmt]
    filename = f"{name}{spreadsheet.suffix}"
    response = HttpResponse(TABLE_FORMATS[fmt](dataset), content_type=spreadsheet.content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    record_document_access(request, filename)
    return response


def adhesion_table(request, year):
    territory, communes = chosen_territory_of(request)
    matrix = adhesions.adhesion_matrix(territory, year, communes=communes)
    status = request.GET.get("statut", "")
    service = request.GET.get("service", "")
    return territory, matrix, adhesions.narrowed(matrix, status=status, service=service)


# Communes shown per page of the adhesion matrix: a row holds a cell per service of the
# territory (a hundred in the largest), the exports every row.
ADHESION_ROWS_PER_PAGE = 50


@login_required
def adhesion_matrix(request, year):
    """Which member commune adheres to which service in the year (a commune reader: their own
    commune's row), filtered by status and service."""
    territory, matrix, shown = adhesion_table(request, year)
    rows = Paginator(shown.rows, ADHESION_ROWS_PER_PAGE).get_page(request.GET.get("page"))
    visible = set(
        Convention.objects.visible_to(request.user)
        .filter(
            pk__in={link.convention.pk for row in rows for c in row.cells for link in c.conventions}
        )
        .values_list("pk", flat=True)
    )
    filters = {key: request.GET.get(key, "") for key in ("statut", "service")}
    return render(
        request,
        "conventions/adhesions.html",
        {
            **table_context(request, territory, year),
            "matrix": shown,
            "rows": rows,
            "pager": pager(request, rows, "page", _("Pages du tableau des adhésions")),
            "all_services": matrix.services,
            "statuses": adhesions.AdhesionStatus.choices,
            "filters": filters,
            "filtered": any(filters.values()),
            "visible": visible,
            "query": request.GET.urlencode(),
        },
    )


@login_required
def adhesion_matrix_export(request, year, fmt):
    if fmt not in TABLE_FORMATS:
        raise Http404
    territory, _matrix, shown = adhesion_table(request, year)
    return table_file(request, adhesions.as_dataset(shown), f"adhesions-{year}", fmt)


def staff_summary(request, year):
    territory, _communes = chosen_territory_of(request)
    conventions = Convention.objects.visible_to(request.user).filter(territory=territory)
    return territory, staff.staff_made_available(year, conventions)


@login_required
def staff_made_available(request, year):
    """The agents the conventions of the territory make available in the year (a commune
    reader: those of the conventions their commune is party to): by regime, employer and
    convention, headcount and ETPT."""
    territory, summary = staff_summary(request, year)
    return render(
        request,
        "conventions/staff.html",
        {
            **table_context(request, territory, year),
            "summary": summary,
            "query": request.GET.urlencode(),
        },
    )


@login_required
def staff_made_available_export(request, year, fmt):
    if fmt not in TABLE_FORMATS:
        raise Http404
    _territory, summary = staff_summary(request, year)
    return table_file(request, staff.as_dataset(summary), f"agents-{year}", fmt)


# --- the schéma de mutualisation (L5211-39-1) ----------------------------------------------------


def get_scheme(request, pk, perm=None):
    """A scheme the user may see (404 otherwise), with ``perm`` checked on it (403)."""
    scheme = get_object_or_404(
        Scheme.objects.visible_to(request.user).select_related("territory"), pk=pk
    )
    if perm is not None and not request.user.has_perm(perm, scheme):
        raise PermissionDenied
    return scheme


def get_scheme_action(request, pk):
    """An action the user may change: 404 when they may not see it (another territory's, or for
    a commune reader an action not concerning their commune), 403 when they only read it."""
    action = get_object_or_404(
        SchemeAction.objects.select_related("scheme__territory").filter(
            scheme__in=Scheme.objects.visible_to(request.user)
        ),
        pk=pk,
    )
    if not request.user.has_perm("conventions.view_schemeaction", action):
        raise Http404
    if not request.user.has_perm("conventions.change_scheme", action.scheme):
        raise PermissionDenied
    return action


@login_required
def scheme_list(request):
    if not scope_of(request.user).has_any_role:
        return render(request, "mutualisation/no_role.html", status=403)
    visible = list(
        Scheme.objects.visible_to(request.user)
        .select_related("territory")
        .order_by("territory__name", "-first_year")
    )
    territories = {}
    for scheme in visible:
        territories.setdefault(scheme.territory, []).append(scheme)
    return render(
        request,
        "conventions/scheme_list.html",
        {
            "territories": territories,
            "this_year": timezone.localdate().year,
            "can_add": request.user.has_perm("conventions.add_scheme")
            and territories_of(request.user).exists(),
        },
    )


def scheme_context(request, scheme, **extra):
    """The detail page's context: a commune reader reads the actions concerning their commune
    and their commune's opinion only; the conventions shown are those the user may open."""
    today = timezone.localdate()
    communes = own_communes(request.user, scheme.territory)
    progress = schemes.scheme_progress(scheme, communes=communes)
    opinions = schemes.consultation(scheme, today)
    if communes is not None:
        opinions = [entry for entry in opinions if entry.commune.pk in communes]
        openable = set(
            Convention.objects.visible_to(request.user)
            .filter(scheme_actions__scheme=scheme)
            .values_list("pk", flat=True)
        )
        for horizon in progress.horizons:
            for entry in horizon.actions:
                entry.conventions[:] = [c for c in entry.conventions if c.pk in openable]
    can_edit = request.user.has_perm("conventions.change_scheme", scheme)
    context = {
        "locked": schemes.is_locked(scheme),
        "scheme": scheme,
        "progress": progress,
        "opinions": opinions,
        "deadline": schemes.opinion_deadline(scheme),
        "own_communes_only": communes is not None,
        "can_edit": can_edit,
        "today": today,
    }
    if can_edit:
        context["submit_form"] = forms.SchemeSubmitForm(
            prefix="transmission", initial={"on": today}
        )
        context["adopt_form"] = forms.SchemeAdoptForm(prefix="approbation", initial={"on": today})
    context.update(extra)
    return context


@login_required
def scheme_detail(request, pk):
    scheme = get_scheme(request, pk)
    return render(request, "conventions/scheme_detail.html", scheme_context(request, scheme))


def scheme_form_page(request, form, title, scheme=None, status=200, **extra):
    """The page of a form of the scheme (the scheme itself, an action, an opinion)."""
    return render(
        request,
        "conventions/scheme_form.html",
        {"form": form, "title": title, "scheme": scheme, **extra},
        status=status,
    )


@login_required
def scheme_create(request):
    if not request.user.has_perm("conventions.add_scheme"):
        raise PermissionDenied
    form = forms.SchemeForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        scheme = form.save()
        messages.success(
            request, _("Projet de schéma créé : ajoutez-lui ses actions, puis transmettez-le.")
        )
        return redirect(scheme)
    return scheme_form_page(request, form, _("Nouveau schéma de mutualisation"))


@login_required
def refuse_if_locked(request, scheme, what: str):
    """A transmitted or approved scheme's text no longer changes: back to it, saying why."""
    if not schemes.is_locked(scheme):
        return None
    messages.error(
        request,
        _(
            "%(what)s : le projet a été transmis aux conseils municipaux le %(date)s ; ce sur "
            "quoi ils ont rendu leur avis (et ce que le conseil a approuvé) ne change plus. "
            "Seuls l'avancement des actions et leurs conventions se mettent à jour ; un schéma "
            "modifié est un nouveau schéma, soumis à son tour."
        )
        % {"what": what, "date": services.fmt(scheme.submitted_on)},
    )
    return redirect(scheme)


@login_required
def scheme_edit(request, pk):
    scheme = get_scheme(request, pk, "conventions.change_scheme")
    if refused := refuse_if_locked(request, scheme, _("Modification refusée")):
        return refused
    form = forms.SchemeForm(request.POST or None, instance=scheme, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Schéma enregistré."))
        return redirect(scheme)
    return scheme_form_page(request, form, _("Modifier le schéma"), scheme)


@login_required
def scheme_action_add(request, pk):
    scheme = get_scheme(request, pk, "conventions.change_scheme")
    if refused := refuse_if_locked(request, scheme, _("Ajout d'une action refusé")):
        return refused
    form = forms.SchemeActionForm(request.POST or None, scheme=scheme)
    if request.method == "POST" and form.is_valid():
        action = form.save()
        messages.success(request, _("Action ajoutée : %(action)s.") % {"action": action})
        return redirect(f"{scheme.get_absolute_url()}#action-{action.pk}")
    return scheme_form_page(request, form, _("Nouvelle action du schéma"), scheme)


@login_required
def scheme_action_edit(request, pk):
    action = get_scheme_action(request, pk)
    scheme = action.scheme
    locked = schemes.is_locked(scheme)
    form_class = forms.SchemeActionProgressForm if locked else forms.SchemeActionForm
    form = form_class(request.POST or None, instance=action)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Action enregistrée : %(action)s.") % {"action": action})
        return redirect(f"{scheme.get_absolute_url()}#action-{action.pk}")
    return scheme_form_page(
        request,
        form,
        _("Modifier l'action : %(action)s") % {"action": action},
        scheme,
        delete_url=None
        if locked
        else reverse("conventions:scheme-action-delete", args=[action.pk]),
        delete_text=_(
            "Action abandonnée ? Préférez l'avancement « Abandonnée », qui la garde au bilan. "
            "Saisie erronée ? Supprimez-la ; l'historique la conserve."
        ),
    )


@login_required
@require_POST
def scheme_action_delete(request, pk):
    action = get_scheme_action(request, pk)
    scheme, title = action.scheme, str(action)
    if refused := refuse_if_locked(request, scheme, _("Suppression refusée")):
        return refused
    action.delete()
    messages.success(
        request, _("Action supprimée : %(action)s (l'historique la conserve).") % {"action": title}
    )
    return redirect(scheme)


@login_required
def scheme_opinion_add(request, pk):
    scheme = get_scheme(request, pk, "conventions.change_scheme")
    if scheme.status != SchemeStatus.CONSULTATION:
        messages.error(
            request,
            _(
                "Les conseils municipaux donnent leur avis sur le projet transmis : le schéma "
                "n'est pas en consultation."
            ),
        )
        return redirect(scheme)
    form = forms.SchemeOpinionForm(
        request.POST or None, scheme=scheme, initial=asked_commune(request)
    )
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                opinion = form.save()
        except IntegrityError:  # the same commune's opinion saved meanwhile (a double click)
            form.add_error("commune", _("Cette commune a déjà rendu son avis sur le schéma."))
            return scheme_form_page(
                request, form, _("Avis d'un conseil municipal"), scheme, status=409
            )
        messages.success(request, _("Enregistré : %(opinion)s.") % {"opinion": opinion})
        return redirect(f"{scheme.get_absolute_url()}#consultation")
    return scheme_form_page(request, form, _("Avis d'un conseil municipal"), scheme)


def asked_commune(request) -> dict:
    """The commune a row of the consultation table names (``?commune=``), pre-selected."""
    asked = request.GET.get("commune", "")
    return {"commune": asked} if asked.isascii() and asked.isdigit() else {}


def scheme_refused(request, scheme, target, missing, **forms_kept):
    """The detail page again with everything missing listed, and the form as it was typed."""
    context = scheme_context(request, scheme, **forms_kept)
    context["refusal"] = {"target": target, "missing": missing}
    return render(request, "conventions/scheme_detail.html", context, status=409)


@login_required
@require_POST
def scheme_submit(request, pk):
    scheme = get_scheme(request, pk, "conventions.change_scheme")
    form = forms.SchemeSubmitForm(request.POST, prefix="transmission")
    try:
        if not form.is_valid():
            raise services.TransitionRefused(
                SchemeStatus.CONSULTATION,
                [*form_errors(form), *schemes.submit_gaps(scheme)],
            )
        scheme = schemes.scheme_submit(scheme, on=form.cleaned_data["on"])
    except services.TransitionRefused as refused:
        return scheme_refused(
            request,
            scheme,
            SchemeStatus.CONSULTATION.label,
            refused.missing,
            submit_form=form,
        )
    messages.success(
        request,
        _(
            "Projet transmis aux conseils municipaux : ils ont trois mois pour rendre leur avis, "
            "soit jusqu'au %(deadline)s."
        )
        % {"deadline": services.fmt(schemes.opinion_deadline(scheme))},
    )
    return redirect(scheme)


@login_required
@require_POST
def scheme_adopt(request, pk):
    scheme = get_scheme(request, pk, "conventions.change_scheme")
    form = forms.SchemeAdoptForm(request.POST, prefix="approbation")
    try:
        if not form.is_valid():
            # Everything else missing is said at once, as of the date typed (else today).
            raise services.TransitionRefused(
                SchemeStatus.ADOPTED,
                [
                    *form_errors(form),
                    *schemes.adopt_gaps(
                        scheme, form.cleaned_data.get("on") or timezone.localdate()
                    ),
                ],
            )
        schemes.scheme_adopt(scheme, on=form.cleaned_data["on"], number=form.cleaned_data["number"])
    except services.TransitionRefused as refused:
        return scheme_refused(
            request, scheme, SchemeStatus.ADOPTED.label, refused.missing, adopt_form=form
        )
    messages.success(request, _("Schéma approuvé par le conseil communautaire."))
    return redirect(scheme)


def form_errors(form) -> list[str]:
    """A form's errors as sentences naming their field (« Date … : Ce champ est obligatoire. »)."""
    return [
        f"{form.fields[name].label} : {error}" if name in form.fields else str(error)
        for name, errors in form.errors.items()
        for error in errors
    ]
