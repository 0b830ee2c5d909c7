"""Screens of the costing module: the year's reimbursements and compliance, cost bases and unit
costs, the usage grid and import, and the simulation of a draft convention or avenant."""

import base64

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from conventions.models import Amendment, Convention, ConventionKind, PartyRole
from conventions.views import get_convention
from costing import engine, forms, services
from costing.models import CostBase, UnitCost
from costing.resources import ImportFileError, import_usage_file
from mutualisation.models import Service
from mutualisation.rules import scope_of

IMPORT_SESSION_KEY = "costing_usage_import"


def require(request, perm):
    if not request.user.has_perm(perm):
        raise PermissionDenied


def year_choices():
    this_year = timezone.localdate().year
    return list(range(this_year + 1, this_year - 4, -1))


@login_required
def index(request):
    require(request, "costing.view_reimbursements")
    return redirect("costing:reimbursements", year=timezone.localdate().year)


@login_required
def reimbursements(request, year):
    require(request, "costing.view_reimbursements")
    visible = Convention.objects.visible_to(request.user)
    try:
        computed = services.compute_reimbursements(year, visible)
    except engine.EngineError as error:
        return render(
            request,
            "costing/reimbursements.html",
            {"year": year, "error": str(error), "years": year_choices()},
        )
    scope = scope_of(request.user)
    view = services.visible_part(computed, None if scope.territory_wide else scope.organisation_ids)
    return render(
        request,
        "costing/reimbursements.html",
        {"year": year, "years": year_choices(), **view},
    )


@login_required
def cost_bases(request, year):
    require(request, "costing.view_reimbursements")
    context = {
        "year": year,
        "years": year_choices(),
        "bases": CostBase.objects.filter(year=year)
        .select_related("service__provider")
        .prefetch_related("lines"),
        "unit_costs": {u.service_id: u for u in UnitCost.objects.filter(year=year)},
        "can_manage": request.user.has_perm("costing.manage_costs"),
    }
    context["rows"] = [
        (base, context["unit_costs"].get(base.service_id)) for base in context["bases"]
    ]
    return render(request, "costing/cost_base_list.html", context)


@login_required
def cost_base_edit(request, pk=None):
    require(request, "costing.manage_costs")
    base = get_object_or_404(CostBase, pk=pk) if pk else CostBase()
    form = forms.CostBaseForm(request.POST or None, instance=base)
    lines = forms.CostLineFormSet(request.POST or None, instance=base, prefix="lines")
    if request.method == "POST" and all([form.is_valid(), lines.is_valid()]):  # noqa: C419 (show every error)
        base = services.cost_base_save(form=form, lines=lines)
        messages.success(request, _("Base de coûts enregistrée."))
        return redirect("costing:cost-base", pk=base.pk)
    return render(
        request, "costing/cost_base_form.html", {"form": form, "lines": lines, "base": base}
    )


@login_required
def cost_base_detail(request, pk):
    require(request, "costing.view_reimbursements")
    base = get_object_or_404(CostBase.objects.select_related("service"), pk=pk)
    unit_cost = UnitCost.objects.filter(service=base.service, year=base.year).first()
    return render(
        request,
        "costing/cost_base_detail.html",
        {
            "base": base,
            "lines": base.lines.all(),
            "unit_cost": unit_cost,
            "can_manage": request.user.has_perm("costing.manage_costs"),
            "notification_form": forms.NotificationForm(),
            "provisional_form": forms.ProvisionalForm(),
        },
    )


@login_required
@require_POST
def unit_cost_compute(request, pk):
    require(request, "costing.manage_costs")
    base = get_object_or_404(CostBase, pk=pk)
    try:
        unit_cost = services.unit_cost_compute(base)
    except engine.EngineError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Coût unitaire %(year)s calculé : %(amount)s €.")
            % {"year": base.year, "amount": unit_cost.amount},
        )
    return redirect("costing:cost-base", pk=base.pk)


@login_required
@require_POST
def unit_cost_notify(request, pk):
    require(request, "costing.manage_costs")
    base = get_object_or_404(CostBase, pk=pk)
    unit_cost = get_object_or_404(UnitCost, service=base.service, year=base.year)
    form = forms.NotificationForm(request.POST)
    if form.is_valid():
        services.unit_cost_notify(unit_cost, form.cleaned_data["notified_on"])
        messages.success(request, _("Date de notification enregistrée."))
    else:
        messages.error(request, _("Date de notification invalide."))
    return redirect("costing:cost-base", pk=base.pk)


@login_required
def usage_grid(request, reference, service, year):
    require(request, "costing.record_usage")
    convention = get_convention(request, reference)
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
    initial = {
        forms.UsageGridForm.key(beneficiary_id, month): quantity
        for (beneficiary_id, month), quantity in services.usage_grid_values(
            convention=convention, service=service, year=year
        ).items()
    }
    form = forms.UsageGridForm(
        request.POST or None, initial=initial, beneficiaries=beneficiaries, year=year
    )
    if request.method == "POST" and form.is_valid():
        written = services.usage_grid_save(
            convention=convention,
            service=service,
            year=year,
            values=form.values(),
            user=request.user,
        )
        messages.success(request, _("%(count)s case(s) enregistrée(s).") % {"count": written})
        return redirect(request.path)
    return render(
        request,
        "costing/usage_grid.html",
        {
            "convention": convention,
            "service": service,
            "year": year,
            "form": form,
            "rows": form.rows(
                services.usage_other_sources(convention=convention, service=service, year=year)
            ),
            "months": forms.MONTH_ABBREVIATIONS,
        },
    )


@login_required
def usage_import(request):
    require(request, "costing.record_usage")
    form = forms.UsageImportForm(request.POST or None, request.FILES or None)
    report, file_error = None, None
    if request.method == "POST" and "confirm" in request.POST:
        stored = request.session.pop(IMPORT_SESSION_KEY, None)
        if stored is None:
            messages.error(request, _("Aucun fichier en attente : déposez-le à nouveau."))
            return redirect("costing:usage-import")
        try:
            report = import_usage_file(
                base64.b64decode(stored["content"]), stored["name"], user=request.user, commit=True
            )
        except ImportFileError as error:
            file_error = str(error)
        else:
            if report.imported:
                messages.success(
                    request, _("%(count)s ligne(s) importée(s).") % {"count": report.rows}
                )
                return redirect("costing:usage-import")
    elif request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        content = upload.read()
        try:
            report = import_usage_file(content, upload.name, user=request.user, commit=False)
        except ImportFileError as error:
            file_error = str(error)
        else:
            if report.ok:
                request.session[IMPORT_SESSION_KEY] = {
                    "name": upload.name,
                    "content": base64.b64encode(content).decode(),
                }
    return render(
        request,
        "costing/usage_import.html",
        {"form": form, "report": report, "file_error": file_error},
    )


@login_required
def simulation(request, reference):
    require(request, "costing.simulate")
    convention = get_convention(request, reference)
    amendment = None
    if request.GET.get("avenant"):
        amendment = get_object_or_404(
            Amendment, convention=convention, number=request.GET["avenant"]
        )
    rows = services.simulate(convention, amendment=amendment)
    chart = services.simulation_chart(rows)
    return render(
        request,
        "costing/simulation.html",
        {"convention": convention, "amendment": amendment, "rows": rows, "chart": chart},
    )
