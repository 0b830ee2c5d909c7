"""Screens of the costing module: the year's reimbursements and compliance, cost bases and unit
costs, the usage grid and import, and the simulation of a draft convention or avenant."""

import re
from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from django_tables2.data import TableListData

from conventions.models import Amendment, Convention, ConventionKind, PartyRole
from conventions.views import chosen_territory_of, get_convention
from costing import engine, exports, forms, instalments, report, services, statements, tables
from costing.models import (
    BatchJob,
    CostBase,
    Instalment,
    Statement,
    StatementLine,
    StatementRemark,
    StatementStatus,
    UnitCost,
    UsageImport,
    UsageRecord,
)
from costing.resources import (
    ImportFileError,
    InstalmentResource,
    MandatResource,
    StatementLineResource,
    TitreResource,
    usage_import_submit,
    usage_template_dataset,
)
from costing.resources import usage_import_confirm as usage_import_confirm_service
from costing.rules import may_approve
from mutualisation.collation import FrenchOrder
from mutualisation.converters import year_choices
from mutualisation.documents import render_pdf
from mutualisation.forms import RowsConflict, carry_version
from mutualisation.french import of
from mutualisation.models import Organisation, Service
from mutualisation.rules import (
    home_territories,
    scope_of,
    territories_of,
)
from mutualisation.services import record_document_access
from mutualisation.tables import configure
from mutualisation.views import pager


def require(request, perm):
    if not request.user.has_perm(perm):
        raise PermissionDenied


def managed_cost_base(request, pk, **related) -> CostBase:
    """A cost base of a service of the user's territories (404 otherwise: its existence is not
    revealed to another territory's staff)."""
    queryset = CostBase.objects.managed_by(request.user)
    if related:
        queryset = queryset.select_related(*related["select"])
    return get_object_or_404(queryset, pk=pk)


def territory_convention(request, reference) -> Convention:
    """A convention of the user's territories: recording its usage and simulating it are its
    territory staff's work, not a party's from another territory (403)."""
    convention = get_convention(request, reference)
    if not scope_of(request.user).works_on(convention.territory_id):
        raise PermissionDenied
    return convention


@login_required
def index(request):
    require(request, "costing.view_reimbursements")
    return redirect("costing:reimbursements", year=timezone.localdate().year)


def paged(request, table, **attributes):
    """A table of the year's rows, its page taken from the query string (its prefix)."""
    for name, value in attributes.items():
        setattr(table, name, value)
    return configure(request, table, per_page=tables.PER_PAGE)


@login_required
def reimbursements(request, year):
    require(request, "costing.view_reimbursements")
    scope = scope_of(request.user)
    # A territory's staff see the whole of its conventions; anyone else (a commune reader),
    # their own organisation's part of the conventions they are party to.
    if scope.is_staff_of_a_territory:
        shown, own = Convention.objects.of_territories(request.user), None
    else:
        shown, own = Convention.objects.visible_to(request.user), scope.organisation_ids
    try:
        stored = services.year_results(year, shown)
    except engine.EngineError as error:
        return render(
            request,
            "costing/reimbursements.html",
            {"year": year, "error": str(error), "years": year_choices()},
        )
    filters = {key: request.GET.get(key, "") for key in ("siren", "service", "direction")}
    view = services.stored_visible_part(stored, own, **filters)
    context = {
        "year": year,
        "years": year_choices(),
        **view,  # its lines are read from the database for the page shown only
        "can_recompute": request.user.has_perm("costing.recompute_reimbursements"),
        "lines_table": paged(
            request,
            tables.LineTable(TableListData(view["lines"]), prefix="lignes-"),
            total=view["total"],
        ),
        "positions_table": paged(
            request, tables.PositionTable(view["positions"], prefix="positions-")
        ),
        "settlements_table": paged(
            request,
            tables.SettlementTable(TableListData(view["settlements"]), prefix="reglements-"),
        ),
        "borne_table": paged(request, tables.BorneTable(view["borne"], prefix="quote-part-"))
        if view["borne"]
        else None,
        "findings_table": paged(
            request, tables.FindingTable(view["findings"], prefix="anomalies-")
        ),
    }
    return render(request, "costing/reimbursements.html", context)


@login_required
@require_POST
def reimbursements_recompute(request, year):
    """« Recalculer » : compute again the year of every convention the user sees, and store it."""
    require(request, "costing.recompute_reimbursements")
    try:
        stored = services.year_results(
            year, Convention.objects.visible_to(request.user), recompute=True
        )  # a commune reader's own conventions; a territory's staff, theirs and those they see
    except engine.EngineError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            ngettext(
                "Remboursements %(year)s recalculés (%(count)s convention).",
                "Remboursements %(year)s recalculés (%(count)s conventions).",
                stored.recomputed,
            )
            % {"year": year, "count": stored.recomputed},
        )
    if request.POST.get("from") == "dashboard" and request.user.has_perm(
        "costing.issue_statements"
    ):
        return redirect("costing:dashboard", year=year)
    return redirect("costing:reimbursements", year=year)


@login_required
def cost_bases(request, year):
    require(request, "costing.view_reimbursements")
    bases = (
        CostBase.objects.visible_to(request.user)
        .filter(year=year)
        .select_related("service__provider")
        .order_by(FrenchOrder("service__name"), "pk")
    )
    table = tables.CostBaseTable(
        bases,
        unit_costs={
            u.service_id: u
            for u in UnitCost.objects.current().filter(
                year=year, service_id__in=bases.values("service_id")
            )
        },
    )
    context = {
        "year": year,
        "years": year_choices(),
        "table": configure(request, table, per_page=COST_BASES_PER_PAGE),
        "can_manage": request.user.has_perm("costing.manage_costs"),
    }
    return render(request, "costing/cost_base_list.html", context)


@login_required
def cost_base_edit(request, pk=None):
    require(request, "costing.manage_costs")
    base = managed_cost_base(request, pk) if pk else CostBase()
    form = forms.CostBaseForm(request.POST or None, instance=base, user=request.user)
    lines = forms.CostLineFormSet(request.POST or None, instance=base, prefix="lines")
    status = 200
    if request.method == "POST" and all([form.is_valid(), lines.is_valid()]):  # noqa: C419 (show every error)
        try:
            base = services.cost_base_save(form=form, lines=lines)
        except services.StaleCostBase:
            form.add_error(None, services.stale_cost_base_message(base))
            carry_version(form, base.version)  # read as this request began
            status = 409
        except ValidationError as error:  # created meanwhile by someone else
            form.add_error(None, error)
            status = 409
        except RowsConflict as conflict:
            form.add_error(None, str(conflict))
            status = 409
        else:
            messages.success(request, _("Base de coûts enregistrée."))
            return redirect("costing:cost-base", pk=base.pk)
    return render(
        request,
        "costing/cost_base_form.html",
        {"form": form, "lines": lines, "formsets": {"lines": lines}, "base": base},
        status=status,
    )


def render_cost_base_detail(request, base, *, correction_form=None, status=200):
    """The cost base, its lines and every version of its unit cost (current first)."""
    versions = list(
        UnitCost.objects.filter(service=base.service, year=base.year)
        .select_related("supersedes")
        .order_by("-version")
    )
    return render(
        request,
        "costing/cost_base_detail.html",
        {
            "base": base,
            "lines": base.lines.all(),
            "unit_cost": versions[0] if versions else None,
            "earlier_versions": versions[1:],
            "can_manage": request.user.has_perm("costing.manage_costs"),
            "notification_form": forms.NotificationForm(),
            "provisional_form": forms.ProvisionalForm(),
            "correction_form": correction_form or forms.UnitCostCorrectionForm(),
        },
        status=status,
    )


@login_required
def cost_base_detail(request, pk):
    require(request, "costing.view_reimbursements")
    base = get_object_or_404(
        CostBase.objects.visible_to(request.user).select_related("service"), pk=pk
    )
    return render_cost_base_detail(request, base)


@login_required
@require_POST
def unit_cost_compute(request, pk):
    require(request, "costing.manage_costs")
    base = managed_cost_base(request, pk)
    try:
        unit_cost = services.unit_cost_compute(base)
    except engine.EngineError as error:  # services.UnitCostRefused included
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Coût unitaire %(year)s calculé : %(amount)s €.")
            % {
                "year": base.year,
                "amount": number_format(unit_cost.amount, 2, force_grouping=True),
            },
        )
    return redirect("costing:cost-base", pk=base.pk)


@login_required
@require_POST
def unit_cost_correct(request, pk):
    """Correct the notified unit cost: a new version with its reason, notified on its own."""
    require(request, "costing.manage_costs")
    base = managed_cost_base(request, pk, select=["service"])
    form = forms.UnitCostCorrectionForm(request.POST)
    if not form.is_valid():
        return render_cost_base_detail(request, base, correction_form=form)
    try:
        unit_cost = services.unit_cost_correct(base, form.cleaned_data["reason"], user=request.user)
    except engine.EngineError as error:
        form.add_error(None, str(error))
        return render_cost_base_detail(request, base, correction_form=form)
    messages.success(
        request,
        _(
            "Version %(version)s du coût unitaire %(year)s créée : %(amount)s €. "
            "Notifiez-la aux bénéficiaires."
        )
        % {
            "version": unit_cost.version,
            "year": base.year,
            "amount": number_format(unit_cost.amount, 2, force_grouping=True),
        },
    )
    return redirect("costing:cost-base", pk=base.pk)


@login_required
@require_POST
def unit_cost_notify(request, pk):
    require(request, "costing.manage_costs")
    base = managed_cost_base(request, pk)
    unit_cost = services.current_unit_cost(base.service, base.year)
    if unit_cost is None:
        raise Http404
    form = forms.NotificationForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("notified_on", [_("Date manquante.")]):
            messages.error(
                request, _("Date de notification invalide : %(error)s") % {"error": error}
            )
        return redirect("costing:cost-base", pk=base.pk)
    try:
        services.unit_cost_notify(unit_cost, form.cleaned_data["notified_on"])
    except engine.EngineError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Date de notification enregistrée."))
    return redirect("costing:cost-base", pk=base.pk)


USAGE_CONVENTIONS_PER_PAGE = 20


@login_required
def usage_list(request, year):
    """« Recours »: the year's conventions of the user's territories, each service with a link
    to its grid, each convention to its état des recours; the way in to the usage work."""
    require(request, "costing.record_usage")
    conventions = services.billed_conventions(
        year, Convention.objects.of_territories(request.user)
    ).order_by("reference")
    page = Paginator(conventions, USAGE_CONVENTIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        (
            convention,
            sorted(
                {line.service for line in convention.services.all()},
                key=lambda service: service.name,
            ),
        )
        for convention in page
    ]
    return render(
        request,
        "costing/usage_list.html",
        {
            "year": year,
            "years": year_choices(),
            "rows": rows,
            "pager": pager(request, page, "page", _("Pagination des conventions")),
        },
    )


@login_required
def usage_grid(request, reference, service, year):
    require(request, "costing.record_usage")
    convention = territory_convention(request, reference)
    service = get_object_or_404(Service, code=service, convention_lines__convention=convention)
    roles = (
        (PartyRole.MEMBER,)
        if convention.kind == ConventionKind.SERVICE_COMMUN
        else (PartyRole.BENEFICIARY,)
    )
    beneficiaries = [
        p.organisation
        for p in convention.parties.select_related("organisation").filter(role__in=roles)
        if p.organisation_id != convention.managing_organisation_id
    ]
    # One reading for the cells shown and the « loaded » field: read twice, an entry saved by
    # someone else in between would be in « loaded » but not on the page, and the next save of
    # the page would delete it.
    shown = services.usage_grid_values(convention=convention, service=service, year=year)
    initial = {
        forms.UsageGridForm.key(beneficiary_id, month): quantity
        for (beneficiary_id, month), quantity in shown.items()
    }
    form = forms.UsageGridForm(
        request.POST or None, initial=initial, beneficiaries=beneficiaries, year=year
    )
    loaded = forms.UsageGridForm.encode_loaded(shown)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            written = services.usage_grid_save(
                convention=convention,
                service=service,
                year=year,
                values=form.values(),
                user=request.user,
                loaded=form.loaded(),
            )
        except services.UsageRefused as refused:
            for reason in refused.reasons:
                form.add_error(None, reason)
        except services.UsageConflict as conflict:
            names = {b.pk: b.name for b in beneficiaries}
            form.add_error(
                None,
                _(
                    "Ces cases ont été modifiées par quelqu'un d'autre depuis l'ouverture de la "
                    "grille : %(cells)s. Rien n'a été enregistré ; vos saisies sont conservées. "
                    "Ouvrez la grille dans un autre onglet pour voir les valeurs actuelles, ou "
                    "enregistrez à nouveau pour les remplacer par les vôtres."
                )
                % {
                    "cells": ", ".join(
                        f"{names.get(b, b)} — {forms.MONTH_ABBREVIATIONS[m - 1]}"
                        for b, m in conflict.cells
                    )
                },
            )
            status = 409
        else:
            messages.success(
                request,
                ngettext("%(count)s case enregistrée.", "%(count)s cases enregistrées.", written)
                % {"count": written},
            )
            return redirect(request.path)
    imported = services.usage_other_sources(convention=convention, service=service, year=year)
    # The totals are those recorded (after a refusal too): what the statement would bill.
    totals = services.usage_grid_totals(
        beneficiary_ids=[b.pk for b in beneficiaries],
        entered=services.usage_grid_units(convention=convention, service=service, year=year),
        imported=imported,
    )
    return render(
        request,
        "costing/usage_grid.html",
        {
            "convention": convention,
            "service": service,
            "year": year,
            "form": form,
            "rows": form.rows(imported, totals.rows),
            "totals": totals,
            "months": forms.MONTH_ABBREVIATIONS,
            "refused": form.refused_cells() if form.is_bound else [],
            # After a conflict, the grid now shown is the current one: saving again is a choice.
            "loaded": loaded,
        },
        status=status,
    )


def usage_beneficiaries(convention):
    roles = (
        (PartyRole.MEMBER,)
        if convention.kind == ConventionKind.SERVICE_COMMUN
        else (PartyRole.BENEFICIARY,)
    )
    return Organisation.objects.filter(
        parties__convention=convention, parties__role__in=roles
    ).exclude(pk=convention.managing_organisation_id)


@login_required
def usage_state(request, reference, year):
    """The état des recours of a convention and year, each record with its source and a link to
    correct it; a form adds a justified adjustment."""
    require(request, "costing.record_usage")
    convention = territory_convention(request, reference)
    services_qs = Service.objects.filter(convention_lines__convention=convention).distinct()
    form = forms.UsageAdjustmentForm(
        request.POST or None,
        beneficiaries=usage_beneficiaries(convention),
        services=services_qs,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.usage_adjust(
                convention=convention,
                beneficiary=data["beneficiary"],
                service=data["service"],
                month_start=date(year, data["month"], 1),
                quantity=data["quantity"],
                weight=data["weight"],
                reference=data["reference"],
                reason=data["reason"],
                user=request.user,
            )
        except services.UsageRefused as refused:
            for reason in refused.reasons:
                form.add_error(None, reason)
        else:
            messages.success(request, _("Ajustement enregistré."))
            return redirect(request.path)
    records, locks = services.usage_state(convention=convention, year=year)
    page = Paginator(records, USAGE_STATE_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "costing/usage_state.html",
        {
            "convention": convention,
            "year": year,
            "years": year_choices(),
            "rows": [(record, locks.get(record.beneficiary_id)) for record in page],
            "pager": pager(request, page, "page", _("Pages des recours")),
            "locks": sorted({lock for lock in locks.values() if lock}),
            "services": services_qs,
            "form": form,
            "show_form": request.method == "POST" or "ajustement" in request.GET,
        },
    )


# Records per page of a convention's état des recours (a service commun's year: thousands).
USAGE_STATE_PER_PAGE = 200


@login_required
def usage_edit(request, pk):
    """Correct one recorded use, with its reason; its history is shown."""
    require(request, "costing.record_usage")
    record = get_object_or_404(
        UsageRecord.objects.select_related("convention", "beneficiary", "service", "weight"), pk=pk
    )
    convention = territory_convention(request, record.convention.reference)
    form = forms.UsageRecordForm(
        request.POST or None,
        unit_type=record.unit_type,
        initial={
            "quantity": record.quantity,
            "weight": record.weight,
            "reference": record.reference,
        },
    )
    lock = services.usage_lock_reason(
        convention_id=record.convention_id,
        beneficiary_id=record.beneficiary_id,
        year=record.period_start.year,
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.usage_record_edit(record, **form.cleaned_data, user=request.user)
        except services.UsageRefused as refused:
            for reason in refused.reasons:
                form.add_error(None, reason)
        else:
            messages.success(request, _("Recours modifié."))
            return redirect(
                "costing:usage-state", reference=convention.reference, year=record.period_start.year
            )
    return render(
        request,
        "costing/usage_edit.html",
        {
            "record": record,
            "convention": convention,
            "form": form,
            "lock": lock,
            "history": record.history.select_related("history_user").order_by("-history_date"),
        },
    )


@login_required
def usage_import(request):
    """Drop a usage file: kept and checked (as a job when large), then shown for confirmation."""
    require(request, "costing.record_usage")
    form = forms.UsageImportForm(request.POST or None, request.FILES or None)
    file_error = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = usage_import_submit(
                content=upload.read(),
                filename=upload.name,
                replace=form.cleaned_data["replace"],
                user=request.user,
            )
        except ImportFileError as error:
            file_error = str(error)
        else:
            return redirect("costing:usage-import-detail", pk=job.pk)
    mine = UsageImport.objects.filter(created_by=request.user)
    recent = mine.defer("errors", "preview", "file")[:10]
    return render(
        request,
        "costing/usage_import.html",
        {
            "form": form,
            "file_error": file_error,
            "recent": recent,
            "template_months": usage_template_months(),
        },
    )


# The usage template's formats: a CSV for French Excel (« ; », UTF-8 BOM) and an XLSX whose
# cells are text (a code INSEE keeps its leading zero).
TEMPLATE_FORMATS = {"csv": exports.excel_csv, "xlsx": exports.xlsx}


@login_required
def usage_template(request, year, month, fmt):
    """« Télécharger le modèle »: the usage file of the month to fill, its rows those in force
    in the user's territories (costing.resources.usage_template_dataset)."""
    require(request, "costing.record_usage")
    if fmt not in TEMPLATE_FORMATS or not 1 <= month <= 12:
        raise Http404
    dataset = usage_template_dataset(request.user, date(year, month, 1))
    response = HttpResponse(
        TEMPLATE_FORMATS[fmt](dataset), content_type=exports.SPREADSHEET_FORMATS[fmt].content_type
    )
    response["Content-Disposition"] = (
        f'attachment; filename="modele-recours-{year}-{month:02d}.{fmt}"'
    )
    return response


def usage_template_months() -> list[date]:
    """The months whose template the import page offers: this one and the last."""
    this_month = timezone.localdate().replace(day=1)
    return [this_month, (this_month - timedelta(days=1)).replace(day=1)]


def own_import(request, pk) -> UsageImport:
    require(request, "costing.record_usage")
    return get_object_or_404(UsageImport, pk=pk, created_by=request.user)


@login_required
def usage_import_detail(request, pk):
    job = own_import(request, pk)
    template = (
        "costing/_usage_import_progress.html"
        if request.htmx
        else "costing/usage_import_detail.html"
    )
    return render(request, template, {"job": job})


@login_required
@require_POST
def usage_import_confirm(request, pk):
    job = own_import(request, pk)
    try:
        job = usage_import_confirm_service(job, user=request.user)
    except ImportFileError as error:
        messages.error(request, str(error))
        return redirect("costing:usage-import")
    if job.status == UsageImport.ImportStatus.IMPORTED:
        messages.success(
            request,
            ngettext("%(count)s ligne importée.", "%(count)s lignes importées.", job.rows)
            % {"count": job.rows},
        )
        if job.replaced:
            messages.success(
                request,
                ngettext(
                    "%(count)s recours importé auparavant remplacé.",
                    "%(count)s recours importés auparavant remplacés.",
                    job.replaced,
                )
                % {"count": job.replaced},
            )
    return redirect("costing:usage-import-detail", pk=job.pk)


@login_required
def simulation(request, reference):
    require(request, "costing.simulate")
    convention = territory_convention(request, reference)
    amendment = None
    if number := request.GET.get("avenant"):
        # An avenant's number, as the links write it; anything else names no avenant.
        if not re.fullmatch(r"[0-9]{1,5}", number):
            raise Http404
        amendment = get_object_or_404(Amendment, convention=convention, number=int(number))
    # The values to simulate are read from the address (GET: nothing is stored), recomputed
    # here by the engine; an invalid value is shown again as typed, with why.
    inputs = services.simulation_inputs(convention, amendment=amendment)
    sent = "simuler" in request.GET
    form = forms.SimulationForm(request.GET if sent else None, inputs=inputs)
    adjustment = form.adjustment() if sent and form.is_valid() else None
    rows = services.simulate(convention, amendment=amendment, adjustment=adjustment)
    chart = services.simulation_chart(rows)
    return render(
        request,
        "costing/simulation.html",
        {
            "convention": convention,
            "amendment": amendment,
            "rows": rows,
            "chart": chart,
            "form": form,
            "simulated": adjustment is not None,
            "refused": [field for field in form if field.errors] if sent else [],
        },
    )


# --- statements --------------------------------------------------------------------------------


def visible_statement(request, pk) -> Statement:
    return get_object_or_404(
        Statement.objects.visible_to(request.user).select_related(
            "convention", "payer", "payee", "cancels"
        ),
        pk=pk,
    )


def territory_statement(request, pk) -> Statement:
    """A statement the user sees, of a convention of their territories: issuing and correcting
    it is its territory's staff's work, not the debtor's from another territory (403)."""
    statement = visible_statement(request, pk)
    if not scope_of(request.user).works_on(statement.convention.territory_id):
        raise PermissionDenied
    return statement


# A large territory issues thousands of statements a year: the list shows them page by page.
STATEMENTS_PER_PAGE = 100
COST_BASES_PER_PAGE = 50
INSTALMENTS_PER_PAGE = 100

STATEMENT_LIST_FIELDS = (
    "year",
    "status",
    "number",
    "total",
    "balance",
    "convention__reference",
    "payer__name",
    "payee__name",
    "review_until",
)


@login_required
def statement_list(request, year):
    require(request, "costing.view_reimbursements")
    listed = (
        Statement.objects.visible_to(request.user)
        .filter(year=year)
        .select_related("convention", "payer", "payee")
        # The columns shown, never the stored PDF nor the snapshot (statements.statement_state
        # reads the annotated is_cancelled).
        .only(*STATEMENT_LIST_FIELDS)
        .with_state()
        .order_by("status", "number", "convention__reference", "payer__name", "pk")
    )
    table = configure(request, tables.StatementTable(listed), per_page=STATEMENTS_PER_PAGE)
    scope = scope_of(request.user)
    return render(
        request,
        "costing/statement_list.html",
        {
            "year": year,
            # A commune's staff: the annual summary of each of their organisations.
            "user_organisations": Organisation.objects.filter(
                pk__in=scope.organisation_ids
            ).order_by(FrenchOrder("name"))
            if scope.organisation_ids and not scope.is_staff_of_a_territory
            else [],
            "years": year_choices(),
            "table": table,
            "can_issue": request.user.has_perm("costing.issue_statements"),
            "batch_territories": territories_of(request.user)
            if request.user.has_perm("costing.issue_statements")
            else [],
            "jobs": BatchJob.objects.visible_to(request.user)
            .filter(year=year)
            .defer("plan", "chunks_done")[:5]
            if request.user.has_perm("costing.issue_statements")
            else [],
        },
    )


@login_required
@require_POST
def statements_prepare(request, year):
    require(request, "costing.issue_statements")
    try:
        prepared = statements.statements_prepare(
            year, Convention.objects.of_territories(request.user), notify=True
        )
    except engine.EngineError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            ngettext(
                "%(count)s projet d'état calculé.",
                "%(count)s projets d'état calculés.",
                len(prepared),
            )
            % {"count": len(prepared)},
        )
    return redirect("costing:statements", year=year)


def remarks_with_forms(statement: Statement, can_answer: bool) -> list[StatementRemark]:
    """The statement's remarks; finance of its territory gets, on a draft, an answer form for
    each (ids of its own, several forms on one page)."""
    remarks = list(statement.remarks.select_related("author", "answered_by", "resolved_by"))
    if can_answer and not statement.is_issued:
        for remark in remarks:
            remark.answer_form = forms.RemarkAnswerForm(
                initial={"answer": remark.answer, "resolved": remark.is_resolved},
                auto_id=f"id_remarque_{remark.pk}_%s",
            )
    return remarks


@login_required
def statement_detail(request, pk):
    require(request, "costing.view_reimbursements")
    statement = visible_statement(request, pk)
    can_issue = request.user.has_perm("costing.issue_statements") and scope_of(
        request.user
    ).works_on(statement.convention.territory_id)
    return render(
        request,
        "costing/statement_detail.html",
        {
            **statements.statement_context(statement),
            "state": statements.statement_state(statement),
            "remarks": remarks_with_forms(statement, can_issue),
            "can_issue": can_issue,
            "can_remark": request.user.has_perm("costing.remark_statement", statement),
            # The predicate itself: a superuser's has_perm is always true, but only the
            # debtor's own users approve.
            "can_approve": may_approve.test(request.user, statement),
            "issue_blockers": statements.issue_refusals(statement)
            if not statement.is_issued and can_issue
            else [],
            "remark_form": forms.RemarkForm(),
            "correction_form": forms.CorrectionForm(),
        },
    )


@login_required
def statement_pdf(request, pk):
    require(request, "costing.view_reimbursements")
    return statement_pdf_response(request, visible_statement(request, pk))


def statement_pdf_response(request, statement: Statement) -> HttpResponse:
    """The very bytes issued, never re-rendered; a draft's projet. (The screens' and the API's
    download.)"""
    if statement.is_issued:
        content = bytes(statement.pdf)  # the very bytes issued, never re-rendered
        filename = f"{statement.number}.pdf"
    else:
        content = statements.render_statement_pdf(statement)
        filename = (
            f"PROJET-{statement.year}-{statement.convention.reference}-{statement.payer.siren}.pdf"
        )
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    if statement.is_issued:
        response["X-Content-SHA256"] = statement.pdf_sha256
    record_document_access(request, filename)
    return response


@login_required
@require_POST
def statement_issue(request, pk):
    require(request, "costing.issue_statements")
    statement = territory_statement(request, pk)
    try:
        statement = statements.statement_issue(statement, user=request.user)
    except statements.StatementRefused as refused:
        for reason in refused.reasons:
            messages.error(request, reason)
    else:
        messages.success(
            request, _("État émis sous le numéro %(number)s.") % {"number": statement.number}
        )
    return redirect(statement)


@login_required
@require_POST
def statement_correct(request, pk):
    require(request, "costing.issue_statements")
    statement = territory_statement(request, pk)
    form = forms.CorrectionForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        draft = statements.statement_correct(statement, reason=reason)
    except statements.StatementRefused as refused:
        for message in refused.reasons:
            messages.error(request, message)
        return redirect(statement)
    messages.success(request, _("Projet de correction créé : vérifiez-le puis émettez-le."))
    return redirect(draft)


@login_required
@require_POST
def statement_remark(request, pk):
    statement = visible_statement(request, pk)
    scope = scope_of(request.user)
    # The debtor commune only; remark_add explains a closed window or an issued statement.
    if scope.is_staff_of_a_territory or statement.payer_id not in scope.organisation_ids:
        raise PermissionDenied
    form = forms.RemarkForm(request.POST)
    if not form.is_valid():
        # The form's own checks: 2 000 characters at most, no NUL character.
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, _("Remarque non transmise : %(error)s") % {"error": error})
        return redirect(statement)
    try:
        statements.remark_add(statement, author=request.user, text=form.cleaned_data["text"])
    except statements.StatementRefused as refused:
        for reason in refused.reasons:
            messages.error(request, reason)
    else:
        messages.success(
            request,
            _("Remarque transmise aux services %(of_territory)s.")
            % {"of_territory": of(statement.convention.territory.name)},
        )
    return redirect(statement)


@login_required
@require_POST
def statement_remark_answer(request, pk):
    require(request, "costing.issue_statements")
    remark = get_object_or_404(
        StatementRemark.objects.filter(statement__in=Statement.objects.visible_to(request.user)),
        pk=pk,
    )
    # Finance of the statement's territory only (403 for another territory's staff who see it).
    statement = territory_statement(request, remark.statement_id)
    form = forms.RemarkAnswerForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, _("Réponse non enregistrée : %(error)s") % {"error": error})
        return redirect(statement)
    was_resolved = remark.is_resolved
    try:
        remark = statements.remark_answer(
            remark,
            user=request.user,
            answer=form.cleaned_data["answer"],
            resolved=form.cleaned_data["resolved"],
        )
    except statements.StatementRefused as refused:
        for reason in refused.reasons:
            messages.error(request, reason)
    else:
        if remark.is_resolved:
            messages.success(request, _("Réponse enregistrée ; la remarque est traitée."))
        elif was_resolved:
            messages.success(request, _("La remarque est rouverte."))
        else:
            messages.success(request, _("Réponse enregistrée ; la remarque reste ouverte."))
    return redirect(statement)


@login_required
@require_POST
def statement_approve(request, pk):
    statement = visible_statement(request, pk)
    if not may_approve.test(request.user, statement):
        raise PermissionDenied
    try:
        statements.statement_approve(statement, user=request.user)
    except statements.StatementRefused as refused:
        for reason in refused.reasons:
            messages.error(request, reason)
    else:
        messages.success(
            request,
            _("Projet approuvé : les services %(of_territory)s peuvent émettre l'état.")
            % {"of_territory": of(statement.convention.territory.name)},
        )
    return redirect(statement)


# --- batches -----------------------------------------------------------------------------------


@login_required
@require_POST
def batch_start(request, year):
    require(request, "costing.issue_statements")
    action = request.POST.get("action")
    if action not in BatchJob.Action.values:
        raise PermissionDenied
    territories = list(territories_of(request.user))
    chosen = request.POST.get("territory", "")
    if chosen:
        territory = next((t for t in territories if str(t.pk) == chosen), None)
        if territory is None:
            raise PermissionDenied
    elif len(territories) == 1:
        territory = territories[0]
    elif request.user.is_superuser:
        territory = None  # the platform's operator: every territory at once
    else:
        messages.error(request, _("Choisissez le territoire dont le lot traite les états."))
        return redirect("costing:statements", year=year)
    try:
        job = statements.batch_start(
            year=year, action=action, user=request.user, territory=territory
        )
    except statements.BatchRefused as refused:
        for reason in refused.reasons:
            messages.error(request, reason)
        job = refused.job  # its progress, on the page the person is sent to
    return redirect("costing:batch", pk=job.pk)


@login_required
def batch_detail(request, pk):
    require(request, "costing.issue_statements")
    job = get_object_or_404(
        BatchJob.objects.visible_to(request.user).defer("plan", "chunks_done"), pk=pk
    )
    template = "costing/_batch_progress.html" if request.htmx else "costing/batch_detail.html"
    return render(request, template, {"job": job})


@login_required
def batch_download(request, pk):
    require(request, "costing.issue_statements")
    job = get_object_or_404(
        BatchJob.objects.visible_to(request.user), pk=pk, status=BatchJob.JobStatus.DONE
    )
    # Streamed from the private storage, never read whole into memory.
    response = FileResponse(
        job.archive.open("rb"),
        content_type="application/zip",
        as_attachment=True,
        filename=f"etats-{job.year}-{job.pk}.zip",
    )
    record_document_access(request, f"etats-{job.year}-{job.pk}.zip")
    return response


# --- exports -----------------------------------------------------------------------------------

EXPORTS = ("lignes", "titres", "mandats", "acomptes")


def export_dataset(year: int, kind: str, conventions):
    """The rows of an export for the finance chain (docs/statements.md), over ``conventions``
    (those of the user's territories), numbers and dates as native values (resources.NATIVE):
    each file format writes them its own way (costing.exports.SPREADSHEET_FORMATS)."""
    if kind == "lignes":
        # The standing issued statements, as the titres and mandats: a draft may still change.
        current = statements.current_statements(year, conventions).filter(
            status=StatementStatus.ISSUED
        )
        queryset = (
            StatementLine.objects.filter(statement__in=current)
            .select_related(
                "statement__convention", "statement__payer", "statement__payee", "service"
            )
            .order_by("statement__number", "statement__convention__reference", "position")
        )
        return StatementLineResource().export(queryset=queryset)
    if kind == "acomptes":
        queryset = (
            Instalment.objects.filter(year=year, convention__in=conventions)
            .select_related("convention", "payer", "payee")
            .order_by("due_date", "convention__reference", "payer__siren", "rank")
        )
        return InstalmentResource(table=statements.account_table()).export(queryset=queryset)
    resource = TitreResource() if kind == "titres" else MandatResource()
    return resource.export(queryset=statements.finance_pieces(year, conventions))


@login_required
def export(request, year, kind, fmt):
    require(request, "costing.issue_statements")
    if kind not in EXPORTS or fmt not in exports.SPREADSHEET_FORMATS:
        raise PermissionDenied
    spreadsheet = exports.SPREADSHEET_FORMATS[fmt]
    dataset = export_dataset(year, kind, Convention.objects.of_territories(request.user))
    dataset.title = f"{kind}-{year}"
    response = HttpResponse(spreadsheet.write(dataset), content_type=spreadsheet.content_type)
    filename = f"{kind}-{year}{spreadsheet.suffix}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    record_document_access(request, filename)
    return response


# --- acomptes ----------------------------------------------------------------------------------


@login_required
def instalment_list(request, year):
    """The acomptes of the year: called (with due date, titre n°, payment) and, for finance, those
    planned on the forecast and not called yet."""
    require(request, "costing.view_reimbursements")
    can_manage = request.user.has_perm("costing.issue_statements")
    called = tables.InstalmentTable(
        Instalment.objects.visible_to(request.user)
        .filter(year=year)
        .select_related("convention", "payer", "payee")
        .order_by("due_date", "convention__reference", "payer__name", "rank"),
        exclude=() if can_manage else ("actions",),
    )
    pending = tables.PlannedInstalmentTable(
        [
            {
                "convention": settlement.convention,
                "payer": settlement.payer.name,
                "rank": planned.rank,
                "due_date": planned.due_date,
                "amount": planned.amount,
            }
            for _convention_id, settlement, planned in instalments.planned_not_called(
                year, Convention.objects.of_territories(request.user)
            )
        ]
        if can_manage
        else [],
        prefix="prevus-",
    )
    return render(
        request,
        "costing/instalment_list.html",
        {
            "year": year,
            "years": year_choices(),
            "called": configure(request, called, per_page=INSTALMENTS_PER_PAGE),
            "pending": configure(request, pending, per_page=INSTALMENTS_PER_PAGE),
            "can_manage": can_manage,
            "call_form": forms.InstalmentCallForm(initial={"up_to": timezone.localdate()}),
        },
    )


@login_required
@require_POST
def instalments_call(request, year):
    require(request, "costing.issue_statements")
    form = forms.InstalmentCallForm(request.POST)
    if form.is_valid():
        called = instalments.instalments_call(
            year,
            up_to=form.cleaned_data["up_to"],
            conventions=Convention.objects.of_territories(request.user),
        )
        messages.success(
            request,
            ngettext("%(count)s acompte appelé.", "%(count)s acomptes appelés.", len(called))
            % {"count": len(called)},
        )
    else:
        messages.error(request, _("Indiquez une date valide (JJ/MM/AAAA)."))
    return redirect("costing:instalments", year=year)


@login_required
@require_POST
def instalment_action(request, pk, action):
    require(request, "costing.issue_statements")
    instalment = get_object_or_404(
        Instalment.objects.filter(convention__in=Convention.objects.of_territories(request.user)),
        pk=pk,
    )
    forms_by_action = {
        "titre": forms.InstalmentTitreForm,
        "encaissement": forms.InstalmentPaymentForm,
        "annulation": forms.InstalmentCancelForm,
    }
    if action not in forms_by_action:
        raise Http404
    form = forms_by_action[action](request.POST)
    try:
        if not form.is_valid():
            raise instalments.InstalmentRefused(
                [
                    f"{form.fields[name].label} : {' '.join(errors)}"
                    for name, errors in form.errors.items()
                ]
            )
        if action == "titre":
            instalments.instalment_record_titre(instalment, form.cleaned_data["number"])
        elif action == "encaissement":
            instalments.instalment_record_payment(instalment, form.cleaned_data["paid_on"])
        else:
            instalments.instalment_cancel(instalment, reason=form.cleaned_data["reason"])
    except instalments.InstalmentRefused as refused:
        for reason in refused.reasons:
            messages.error(request, reason)
    else:
        messages.success(
            request, _("Acompte %(instalment)s mis à jour.") % {"instalment": instalment}
        )
    return redirect("costing:instalments", year=instalment.year)


# --- dashboard ---------------------------------------------------------------------------------


@login_required
def dashboard(request, year):
    require(request, "costing.issue_statements")
    conventions = Convention.objects.of_territories(request.user)
    stored = services.year_results(year, conventions)
    view = services.stored_dashboard(stored, conventions)
    context = {
        "year": year,
        "years": year_choices(),
        **view,
        "can_recompute": request.user.has_perm("costing.recompute_reimbursements"),
        "positions_table": paged(
            request,
            tables.DashboardPositionTable(view["positions"], prefix="positions-"),
            year=year,
            caption_visible=True,
        ),
        "findings_table": paged(
            request, tables.FindingTable(view["findings"], prefix="anomalies-")
        ),
        "alerts_table": paged(request, tables.AlertTable(view["alerts"], prefix="echeances-")),
    }
    return render(request, "costing/dashboard.html", context)


@login_required
def commune_summary_pdf(request, year, siren):
    """Consolidated annual summary of one organisation across all its conventions."""
    require(request, "costing.view_reimbursements")
    organisation = get_object_or_404(Organisation.objects.visible_to(request.user), siren=siren)
    selected = list(
        statements.current_statements(year)
        .filter(pk__in=Statement.objects.visible_to(request.user).values("pk"))
        .filter(Q(payer=organisation) | Q(payee=organisation))
    )
    content = statements.render_summary_pdf(year, selected, organisation=organisation)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="recapitulatif-{year}-{siren}.pdf"'
    record_document_access(request, f"recapitulatif-{year}-{siren}.pdf")
    return response


@login_required
@require_POST
def unit_cost_provisional(request, pk):
    require(request, "costing.manage_costs")
    base = managed_cost_base(request, pk, select=["service"])
    form = forms.ProvisionalForm(request.POST)
    if not form.is_valid():
        for name, errors in form.errors.items():
            for error in errors:
                messages.error(
                    request,
                    _("Indices invalides (%(field)s) : %(error)s")
                    % {"field": form.fields[name].label, "error": error},
                )
        return redirect("costing:cost-base", pk=base.pk)
    try:
        unit_cost = services.unit_cost_provisional(
            service=base.service, year=base.year, **form.cleaned_data
        )
    except UnitCost.DoesNotExist:
        messages.error(
            request,
            _("Pas de coût unitaire %(year)s à indexer pour ce service.") % {"year": base.year - 1},
        )
    except engine.EngineError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Coût unitaire provisoire %(year)s : %(amount)s €.")
            % {"year": base.year, "amount": unit_cost.amount},
        )
    return redirect("costing:cost-base", pk=base.pk)


# --- the annual report to the council (L5211-39-1) ----------------------------------------------


def annual_report_context(request, year) -> dict:
    """The report of the territory chosen (``?territoire=<SIREN>``) for the user: whole for its
    staff, their own commune's part for a commune reader; 404 for a territory not theirs."""
    require(request, "costing.view_reimbursements")
    territory, communes = chosen_territory_of(request)
    return report.annual_report(
        territory=territory,
        year=year,
        conventions=Convention.objects.visible_to(request.user),
        communes=communes,
    )


@login_required
def annual_report(request, year):
    context = annual_report_context(request, year)
    return render(
        request,
        "costing/annual_report.html",
        {
            **context,
            "charts": report.charts(context),
            "years": year_choices(),
            "territories": home_territories(request.user).order_by("name"),
        },
    )


@login_required
def annual_report_pdf(request, year):
    context = annual_report_context(request, year)
    content = render_pdf(
        "costing/annual_report_pdf.html", {**context, "charts": report.charts(context)}
    )
    filename = f"rapport-mutualisation-{year}-{context['territory'].siren}.pdf"
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    record_document_access(request, filename)
    return response
