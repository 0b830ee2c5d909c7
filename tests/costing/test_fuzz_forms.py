"""Fuzzing of the costing forms, through their screens as the persona allowed to use them and
directly: hostile values never give a 500, a refusal writes nothing, what is accepted is stored
as typed (see tests/fuzz.py for the values and the properties)."""

import json
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.urls import reverse
from hypothesis import event, example, given
from hypothesis import strategies as st

from costing import forms, services, statements
from costing.models import (
    CostBase,
    Instalment,
    InstalmentStatus,
    Statement,
    UnitCost,
    UsageImport,
    UsageRecord,
    UsageSource,
)
from mutualisation.models import UnitWeight
from tests.conventions.conftest import mad_descendante  # noqa: F401
from tests.costing.conftest import (  # noqa: F401
    after_year_end,
    billed,
    cost_base,
    issue_after_review,
    record_planned_instalments,
    unit_cost_kwargs,
)
from tests.factories import OrganisationFactory, ServiceFactory, UnitTypeFactory
from tests.fuzz import (
    assert_french,
    assert_stored,
    budget,
    changed_tables,
    check_form,
    date_text,
    decimal_text,
    example_rolled_back,
    fingerprint,
    form_data,
    fuzzes,
    hostile_boolean,
    hostile_choice,
    hostile_date,
    hostile_management,
    hostile_number,
    hostile_text,
    management,
    query_dict,
    submit,
    text_up_to,
    upload,
    usage_file,
    year_text,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(billed, personas):  # noqa: F811
    """The billed 2026 convention (communes A and B), seen on 15 January 2027: its drafts, a
    cost base per year 2026 (unit cost notified), 2027 (computed, not notified) and 2028 (none:
    a provisional one can be indexed), weights, an acompte called, and what is not offered."""
    territory, service = billed.territory, billed.service
    weight = UnitWeight.objects.create(
        unit_type=service.unit_type, code="PC", label="Permis", weight=Decimal("1")
    )
    foreign_weight = UnitWeight.objects.create(
        unit_type=UnitTypeFactory(), code="DP", label="Déclaration", weight=Decimal("0.5")
    )
    bases = {year: cost_base(service, year=year) for year in (2026, 2027, 2028)}
    UnitCost.objects.create(
        service=service,
        year=2027,
        amount=Decimal("250.00"),
        notification_deadline=date(2027, 4, 15),
    )
    record_planned_instalments(2026, territory.commune_a)
    return SimpleNamespace(
        **vars(billed),
        personas=personas,
        drafts={s.payer.name: s for s in statements.statements_prepare(2026)},
        weight=weight,
        foreign_weight=foreign_weight,
        bases=bases,
        other_service=ServiceFactory(provider=territory.epci),
        stranger=OrganisationFactory(name="Commune étrangère"),
        record=UsageRecord.objects.filter(beneficiary=territory.commune_a).first(),
        instalment=Instalment.objects.filter(payer=territory.commune_a).first(),
    )


def outcome(refused):
    event("refusé" if refused else "accepté")


# --- cost base and its lines ---------------------------------------------------------------------


def cost_base_fields(world):
    services_offered = [world.other_service.pk, world.service.pk]
    optional_decimal = st.one_of(st.just(""), decimal_text(10**9, 2))
    valid = {
        "service": st.sampled_from(services_offered).map(str),
        "year": year_text(2024, 2030),
        "source": st.sampled_from(["CA", "CFU"]),
        "source_year": year_text(2018, 2029),
        "reference_units": decimal_text(10**6, 3, min_value=Decimal("0.001")),
        "reference_basis": st.sampled_from(["FORECAST", "OBSERVED"]),
        "reference_year": st.one_of(st.just(""), year_text(2018, 2029)),
        "forecast_cost": optional_decimal,
        "actual_cost": optional_decimal,
        "notes": st.one_of(st.just(""), text_up_to(None)),
    }
    hostile = {
        "service": hostile_choice(world.record.pk + 10_000),
        "year": hostile_number,
        "source": hostile_choice("CB", "ca"),
        "source_year": hostile_number,
        "reference_units": hostile_number,
        "reference_basis": hostile_choice("ACTUAL"),
        "reference_year": hostile_number,
        "forecast_cost": hostile_number,
        "actual_cost": hostile_number,
        "notes": hostile_text,
        "version": hostile_number,
    }
    return valid, hostile


def cost_line_fields(index, line=None):
    prefix = f"lines-{index}-"
    valid = {
        prefix + "label": text_up_to(200),
        prefix + "category": st.sampled_from(["PERSONNEL", "SUPPLIES", "OTHER_LINKED"]),
        prefix + "account": st.from_regex(r"6[0-9]{1,5}", fullmatch=True),
        prefix + "accounts_amount": decimal_text(10**9, 2, min_value=-(10**6)),
        prefix + "budget_adjustment": decimal_text(10**6, 2, min_value=-(10**6)),
        prefix + "eligible": st.sampled_from(["on", ""]),
        prefix + "justification": st.one_of(st.just(""), text_up_to(None)),
    }
    if line is not None:
        valid[prefix + "id"] = st.just(str(line.pk))
        valid[prefix + "DELETE"] = st.sampled_from(["", "", "on"])
    hostile = {
        prefix + "label": hostile_text,
        prefix + "category": hostile_choice("INVESTMENT"),
        prefix + "account": st.one_of(
            st.sampled_from(["2183", "6611", "64 11", "6411.", "٦٤١١", "６４１１", "1" * 11]),
            hostile_text,
        ),
        prefix + "accounts_amount": hostile_number,
        prefix + "budget_adjustment": hostile_number,
        prefix + "eligible": hostile_boolean,
        prefix + "justification": hostile_text,
        prefix + "id": hostile_choice(),
        prefix + "cost_base": hostile_choice(),
        prefix + "DELETE": hostile_boolean,
    }
    return valid, hostile


@fuzzes(forms.CostBaseForm, forms.CostLineForm, forms.CostLineFormSet)
@budget()
@given(st.data())
def test_cost_base_and_lines_never_break_and_a_refusal_writes_nothing(client, world, data):
    editing = data.draw(st.booleans(), label="editing")
    base = world.bases[2026] if editing else CostBase()
    valid, hostile = cost_base_fields(world)
    line = base.lines.first() if editing else None
    for index, existing in enumerate([line, None] if editing else [None, None]):
        line_valid, line_hostile = cost_line_fields(index, existing)
        valid |= line_valid
        hostile |= line_hostile
    valid = {
        name: st.just(value) for name, value in management("lines", 2, int(editing)).items()
    } | valid
    if editing:
        valid["version"] = st.just(str(base.version))
    hostile |= hostile_management("lines")
    sent = data.draw(form_data(valid, hostile), label="sent")
    with example_rolled_back():
        fresh = CostBase.objects.get(pk=base.pk) if editing else CostBase()
        form = forms.CostBaseForm(query_dict(sent), instance=fresh)
        lines = forms.CostLineFormSet(query_dict(sent), instance=fresh, prefix="lines")
        valid_form, valid_lines = check_form(form, sent), check_form(lines, sent)
        client.force_login(world.personas.finance)
        url = (
            reverse("costing:cost-base-edit", args=[base.pk])
            if editing
            else reverse("costing:cost-base-create")
        )
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not (valid_form and valid_lines):
            assert refused
        if not refused:
            stored = world.bases[2026] if editing else CostBase.objects.latest("pk")
            assert_stored(stored, {k: v for k, v in form.cleaned_data.items() if k != "version"})
            kept = [
                f.cleaned_data
                for f in lines.forms
                if f.has_changed() and not f.cleaned_data.get("DELETE")
            ]
            for cleaned in kept:
                assert stored.lines.filter(
                    label=cleaned["label"], accounts_amount=cleaned["accounts_amount"]
                ).exists()


# --- unit cost: notification, correction, provisional value ------------------------------------------


@fuzzes(forms.NotificationForm)
@budget()
@example(data={"notified_on": "0001-01-01"})  # was stored as it is
@given(data=form_data({"notified_on": date_text(date(2026, 1, 1), date(2027, 1, 15))},
                      {"notified_on": hostile_date}))  # fmt: skip
def test_a_notification_date_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    base = world.bases[2027]
    with example_rolled_back():
        form = forms.NotificationForm(query_dict(data))
        valid = check_form(form, data)
        client.force_login(world.personas.finance)
        url = reverse("costing:unit-cost-notify", args=[base.pk])
        _response, refused = submit(client, url, data)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            notified = services.current_unit_cost(base.service, 2027).notified_on
            assert notified == form.cleaned_data["notified_on"]


@fuzzes(forms.UnitCostCorrectionForm)
@budget()
@given(data=form_data({"reason": text_up_to(2000)}))
def test_a_unit_cost_correction_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    base = world.bases[2026]
    with example_rolled_back():
        form = forms.UnitCostCorrectionForm(query_dict(data))
        valid = check_form(form, data)
        client.force_login(world.personas.finance)
        _response, refused = submit(
            client, reverse("costing:unit-cost-correct", args=[base.pk]), data
        )
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            current = services.current_unit_cost(base.service, 2026)
            assert current.version == 2
            assert current.correction_reason == form.cleaned_data["reason"].strip()


@fuzzes(forms.ProvisionalForm)
@budget()
@given(
    data=form_data(
        {"index_now": decimal_text(1000, 3), "index_before": decimal_text(1000, 3)},
        {"index_now": hostile_number, "index_before": hostile_number},
    ),
    year=st.sampled_from([2026, 2027, 2028]),
)
@example(data={"index_now": "1e308", "index_before": "0.001"}, year=2028)  # was a 500
def test_a_provisional_unit_cost_never_breaks_and_a_refusal_writes_nothing(
    client, world, data, year
):
    base = world.bases[year]
    with example_rolled_back():
        valid = check_form(forms.ProvisionalForm(query_dict(data)), data)
        client.force_login(world.personas.finance)
        url = reverse("costing:unit-cost-provisional", args=[base.pk])
        _response, refused = submit(client, url, data)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            assert services.current_unit_cost(base.service, year).is_provisional


# --- usage: grid, single record, adjustment, import ----------------------------------------------

LOADED_VALUES = ["sNaN", "NaN", "-Infinity", "1e999999999", "-1", "0.0001", "abc", None, [], {}]
HOSTILE_LOADED = [
    "",
    "{}",
    "[]",
    "null",
    "nope",
    '{"1_3": "sNaN"}',
    '{"1_3": "NaN"}',
    '{"1_3": "Infinity"}',
    '{"1_3": "1e999999999"}',
    '{"1_3": [1]}',
    '{"1_3": {"a": 1}}',
    '{"1_3": null}',
    '{"a_b": "1"}',
    '{"1_2_3": "1"}',
    '{"99999999999999999999_1": "1"}',
    '{"1": "1"}',
    '{"1_3": "1"' * 3,
    '"\\u0000"',
]


@fuzzes(forms.UsageGridForm)
@budget()
@given(st.data())
def test_the_usage_grid_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    territory = world.territory
    beneficiaries = [territory.commune_a, territory.commune_b]
    keys = [forms.UsageGridForm.key(b.pk, m) for b in beneficiaries for m in range(1, 13)]
    cells = data.draw(st.sets(st.sampled_from(keys), max_size=4), label="cells")
    quantity = st.one_of(st.just(""), decimal_text(10**6, 3))
    shown = services.usage_grid_values(
        convention=world.convention, service=world.service, year=2026
    )
    loaded = forms.UsageGridForm.encode_loaded(shown)
    # The grid "as shown", tampered with: for the very cells sent, or junk.
    shown_cells = st.dictionaries(
        st.sampled_from(sorted(cells) or keys[:1]).map(lambda key: key.removeprefix("q_")),
        st.sampled_from(LOADED_VALUES),
        min_size=1,
    ).map(json.dumps)
    hostile_loaded = st.one_of(st.sampled_from(HOSTILE_LOADED), shown_cells, hostile_text)
    valid = dict.fromkeys(sorted(cells), quantity) | {"loaded": st.just(loaded)}
    hostile = dict.fromkeys(sorted(cells) or keys[:2], hostile_number) | {
        "loaded": hostile_loaded,
        f"q_{world.stranger.pk}_3": hostile_number,
        "q_0_13": hostile_number,
    }
    sent = data.draw(form_data(valid, hostile), label="sent")
    if data.draw(st.booleans(), label="tampered"):
        sent["loaded"] = data.draw(shown_cells, label="loaded")
    with example_rolled_back():
        form = forms.UsageGridForm(query_dict(sent), beneficiaries=beneficiaries, year=2026)
        valid_form = check_form(form, sent)
        if valid_form:
            form.loaded()  # the hidden grid as shown, whatever it holds
        client.force_login(world.personas.manager)
        url = reverse(
            "costing:usage-grid", args=[world.convention.reference, world.service.code, 2026]
        )
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid_form:
            assert refused
        if not refused:
            stored = services.usage_grid_values(
                convention=world.convention, service=world.service, year=2026
            )
            for (beneficiary_id, month), value in form.values().items():
                if forms.UsageGridForm.key(beneficiary_id, month) in sent:
                    assert stored.get((beneficiary_id, month)) == value


def record_fields(world):
    valid = {
        "quantity": decimal_text(10**6, 3),
        "weight": st.sampled_from(["", str(world.weight.pk)]),
        "reference": st.one_of(st.just(""), text_up_to(80)),
        "reason": text_up_to(2000),
    }
    hostile = {
        "quantity": hostile_number,
        "weight": hostile_choice(world.foreign_weight.pk),
        "reference": hostile_text,
        "reason": hostile_text,
    }
    return valid, hostile


@fuzzes(forms.UsageRecordForm)
@budget()
@given(st.data())
def test_correcting_a_recorded_use_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    record = world.record
    sent = data.draw(form_data(*record_fields(world)), label="sent")
    with example_rolled_back():
        form = forms.UsageRecordForm(query_dict(sent), unit_type=record.unit_type)
        valid = check_form(form, sent)
        client.force_login(world.personas.manager)
        _response, refused = submit(client, reverse("costing:usage-edit", args=[record.pk]), sent)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            record.refresh_from_db()
            assert record.quantity == form.cleaned_data["quantity"]
            assert record.reference == form.cleaned_data["reference"]
            assert record.weight == form.cleaned_data["weight"]


@fuzzes(forms.UsageAdjustmentForm)
@budget()
@given(st.data())
def test_a_usage_adjustment_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    territory = world.territory
    valid, hostile = record_fields(world)
    valid |= {
        "beneficiary": st.sampled_from([territory.commune_a.pk, territory.commune_b.pk]).map(str),
        "service": st.just(str(world.service.pk)),
        "month": st.integers(1, 12).map(str),
        "quantity": decimal_text(10**4, 3, min_value=-(10**4)),
    }
    hostile |= {
        # Not offered: the provider itself, a commune outside the convention, another service.
        "beneficiary": hostile_choice(territory.epci.pk, world.stranger.pk),
        "service": hostile_choice(world.other_service.pk),
        "month": hostile_choice("0", "13", "1.0", "-1"),
    }
    sent = data.draw(form_data(valid, hostile), label="sent")
    with example_rolled_back():
        beneficiaries = services_beneficiaries(world)
        offered = world.convention.services.all().values("service")
        form = forms.UsageAdjustmentForm(
            query_dict(sent),
            beneficiaries=beneficiaries,
            services=type(world.service).objects.filter(pk__in=offered),
        )
        valid_form = check_form(form, sent)
        client.force_login(world.personas.manager)
        before = UsageRecord.objects.count()
        url = reverse("costing:usage-state", args=[world.convention.reference, 2026])
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid_form:
            assert refused
        if not refused:
            assert UsageRecord.objects.count() == before + 1
            added = UsageRecord.objects.latest("pk")
            assert added.source == UsageSource.ADJUSTMENT
            assert added.quantity == form.cleaned_data["quantity"]
            assert added.reason == form.cleaned_data["reason"]


def services_beneficiaries(world):
    from costing.views import usage_beneficiaries

    return usage_beneficiaries(world.convention)


@fuzzes(forms.UsageImportForm)
@budget()
@given(st.data())
def test_importing_through_the_screen_never_breaks_and_a_refusal_writes_nothing(
    client, world, data
):
    """A dropped file is kept with its outcome (the person's list of files, purged after the
    retention when never imported): a refused file adds that trace and nothing else."""
    content, name = data.draw(usage_file(catalogue(world)), label="file")
    replace = data.draw(hostile_boolean, label="replace")
    with_file = data.draw(st.booleans(), label="with a file")
    with example_rolled_back():
        form = forms.UsageImportForm(
            query_dict({"replace": replace}), {"file": upload(name, content)} if with_file else {}
        )
        check_form(form, {"replace": replace})
        client.force_login(world.personas.manager)
        url = reverse("costing:usage-import")
        files = {"file": upload(name, content)} if with_file else {}
        before, tables = UsageRecord.objects.count(), fingerprint()
        response, refused = submit(
            client, url, {"replace": replace}, files=files, explained=preview_explained
        )
        if not refused:
            job = UsageImport.objects.latest("pk")
            assert response.url == reverse("costing:usage-import-detail", args=[job.pk])
            assert client.get(response.url).status_code == 200
            for error in job.errors:
                assert_french(error["message"])
            if job.status != UsageImport.ImportStatus.CHECKED:
                assert changed_tables(tables, fingerprint()) == ["costing_usageimport"]
            else:
                confirm = reverse("costing:usage-import-confirm", args=[job.pk])
                submit(client, confirm, {})
                job.refresh_from_db()
                if job.status == UsageImport.ImportStatus.IMPORTED:
                    assert UsageRecord.objects.count() == before + job.rows - job.replaced
                else:
                    assert UsageRecord.objects.count() == before


def preview_explained(response):
    """The import page explains a file it refuses at once."""
    context = response.context
    if context.get("file_error"):
        assert_french(context["file_error"])
        return True
    return False


def catalogue(world):
    """Per column of an import file: the values it accepts, and real ones it does not (the
    provider, a commune outside the convention, another service, another unit's weight)."""
    territory = world.territory
    return {
        "convention": ([world.convention.reference, world.convention.reference.lower()], []),
        "beneficiaire": (
            [territory.commune_a.insee_code, territory.commune_b.siren],
            [territory.epci.siren, world.stranger.insee_code],
        ),
        "service": ([world.service.code], [world.other_service.code]),
        "ponderation": (["", "PC", "pc"], ["DP"]),
    }


# --- statements ----------------------------------------------------------------------------------


@fuzzes(forms.RemarkForm)
@budget()
@given(data=form_data({"text": text_up_to(2000)}))
def test_a_remark_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    mine = world.drafts["Commune A"]
    with example_rolled_back():
        form = forms.RemarkForm(query_dict(data))
        valid = check_form(form, data)
        client.force_login(world.personas.reader_a)
        url = reverse("costing:statement-remark", args=[mine.pk])
        _response, refused = submit(client, url, data)
        outcome(refused)
        assert refused != valid
        if valid:
            assert mine.remarks.get().text == form.cleaned_data["text"]


@pytest.fixture
def remark(world):
    return statements.remark_add(
        world.drafts["Commune A"], author=world.personas.reader_a, text="Mars en double."
    )


@fuzzes(forms.RemarkAnswerForm)
@budget()
@given(
    data=form_data(
        {"answer": text_up_to(2000), "resolved": st.sampled_from(["on", ""])},
        {"answer": hostile_text, "resolved": hostile_boolean},
    ),
    persona=st.sampled_from(["finance", "finance", "reader_a", "reader_b", "manager"]),
)
def test_answering_a_remark_never_breaks_and_a_refusal_writes_nothing(
    client, world, remark, data, persona
):
    with example_rolled_back():
        form = forms.RemarkAnswerForm(query_dict(data))
        valid = check_form(form, data)
        client.force_login(getattr(world.personas, persona))
        url = reverse("costing:statement-remark-answer", args=[remark.pk])
        _response, refused = submit(client, url, data)
        outcome(refused)
        if persona != "finance":
            assert refused
        elif valid:
            assert not refused
            remark.refresh_from_db()
            assert remark.answer == form.cleaned_data["answer"]
            assert remark.is_resolved == form.cleaned_data["resolved"]
        else:
            assert refused


@pytest.fixture
def issued(world):
    return issue_after_review(world.drafts["Commune B"])


@fuzzes(forms.CorrectionForm)
@budget(0.5)
@given(data=form_data({"reason": text_up_to(2000)}))
def test_correcting_an_issued_statement_never_breaks_and_a_refusal_writes_nothing(
    client, world, issued, data
):
    with example_rolled_back():
        form = forms.CorrectionForm(query_dict(data))
        valid = check_form(form, data)
        client.force_login(world.personas.finance)
        url = reverse("costing:statement-correct", args=[issued.pk])
        _response, refused = submit(client, url, data)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            correction = Statement.objects.get(cancels=issued)
            assert correction.correction_reason == form.cleaned_data["reason"]


STATEMENT_ACTIONS = [
    "statement-issue",
    "statement-approve",
    "statement-remark",
    "statement-correct",
]


@budget()
@given(
    action=st.sampled_from(STATEMENT_ACTIONS + ["statements-prepare", "batch-start"]),
    persona=st.sampled_from(["finance", "reader_a", "reader_b", "manager", "outsider"]),
    payer=st.sampled_from(["Commune A", "Commune B"]),
    body=form_data(
        {"action": st.sampled_from(["PREPARE", "ISSUE_AND_EXPORT"])},
        {"action": hostile_choice("EXPORT", "DELETE")},
    ),
)
def test_statement_actions_never_break_and_a_refusal_writes_nothing(
    client, world, action, persona, payer, body
):
    """Issue, approve, remark, correct, prepare and batches, by anyone, with any body."""
    with example_rolled_back():
        client.force_login(getattr(world.personas, persona))
        if action in STATEMENT_ACTIONS:
            url = reverse(f"costing:{action}", args=[world.drafts[payer].pk])
        else:
            url = reverse(f"costing:{action}", args=[2026])
        _response, refused = submit(client, url, body)
        outcome(refused)


# --- acomptes ------------------------------------------------------------------------------------


@fuzzes(forms.InstalmentCallForm)
@budget()
@given(
    data=form_data(
        {"up_to": date_text(date(2026, 1, 1), date(2027, 1, 15))}, {"up_to": hostile_date}
    ),
    year=st.sampled_from([2026, 2027]),
)
def test_calling_acomptes_never_breaks_and_a_refusal_writes_nothing(client, world, data, year):
    with example_rolled_back():
        check_form(forms.InstalmentCallForm(query_dict(data)), data)
        client.force_login(world.personas.finance)
        _response, refused = submit(client, reverse("costing:instalments-call", args=[year]), data)
        outcome(refused)


@fuzzes(forms.InstalmentTitreForm, forms.InstalmentPaymentForm, forms.InstalmentCancelForm)
@budget(1.5)
@given(
    action=st.sampled_from(["titre", "encaissement", "annulation", "suppression"]),
    data=form_data(
        {
            "number": text_up_to(40),
            "paid_on": date_text(date(2026, 1, 1), date(2027, 1, 15)),
            "reason": text_up_to(200),
        },
        {"number": hostile_text, "paid_on": hostile_date, "reason": hostile_text},
    ),
    titre_first=st.booleans(),
)
@example(action="encaissement", data={"paid_on": "0001-01-01"}, titre_first=True)  # was stored
def test_recording_an_acompte_never_breaks_and_a_refusal_writes_nothing(
    client, world, action, data, titre_first
):
    instalment = world.instalment
    form_class = {
        "titre": forms.InstalmentTitreForm,
        "encaissement": forms.InstalmentPaymentForm,
        "annulation": forms.InstalmentCancelForm,
    }.get(action)
    with example_rolled_back():
        if titre_first:
            Instalment.objects.filter(pk=instalment.pk).update(
                status=InstalmentStatus.TITRE_ISSUED, titre_number="T-2026-1"
            )
        valid = check_form(form_class(query_dict(data)), data) if form_class else False
        client.force_login(world.personas.finance)
        url = reverse("costing:instalment-action", args=[instalment.pk, action])
        _response, refused = submit(client, url, data)
        outcome(refused)
        if not valid:
            assert refused


# --- what is read from the address: filters, simulation ----------------------------------------


@budget()
@given(
    params=form_data(
        {
            "siren": st.just(""),
            "service": st.just(""),
            "direction": st.just(""),
            "avenant": st.just(""),
        },
        {
            "siren": hostile_text,
            "service": hostile_text,
            "direction": hostile_choice("IN", "OUT"),
            "avenant": hostile_choice("1", "2"),
        },
    ),
    page=st.sampled_from(["reimbursements", "simulation", "usage-state", "cost-bases"]),
    persona=st.sampled_from(["finance", "manager", "reader_a"]),
)
@example(params={"avenant": "1.5"}, page="simulation", persona="manager")  # was a 500
@example(params={"avenant": " "}, page="simulation", persona="manager")  # was a 500
def test_pages_read_hostile_query_strings_without_breaking(client, world, params, page, persona):
    with example_rolled_back():
        client.force_login(getattr(world.personas, persona))
        args = {
            "reimbursements": [2026],
            "cost-bases": [2026],
            "simulation": [world.convention.reference],
            "usage-state": [world.convention.reference, 2026],
        }[page]
        submit(client, reverse(f"costing:{page}", args=args), params, method="get")


@fuzzes(forms.SimulationForm)
@budget()
@given(st.data())
def test_the_simulation_form_never_breaks_never_writes_and_simulates_what_it_accepts(
    client, world, data
):
    """Read from the address: whatever is typed, no 500, nothing stored; a valid form's values
    are simulated (Decimal), a refused one's shown again with a French message."""
    line = world.convention.services.get()
    payers = [world.territory.commune_a, world.territory.commune_b]
    cost_key = forms.SimulationForm.cost_key(line.pk)
    units_keys = [forms.SimulationForm.units_key(line.pk, payer.pk) for payer in payers]
    valid = {
        cost_key: st.one_of(st.just(""), decimal_text(10**6, 2)),
        **dict.fromkeys(units_keys, st.one_of(st.just(""), decimal_text(10**6, 3))),
        "simuler": st.just("1"),
    }
    hostile = {
        cost_key: hostile_number,
        **dict.fromkeys(units_keys, hostile_number),
        forms.SimulationForm.units_key(line.pk, world.stranger.pk): hostile_number,
        forms.SimulationForm.cost_key(line.pk + 10_000): hostile_number,
        "avenant": hostile_choice("1", "2"),
        "simuler": hostile_text,
    }
    sent = data.draw(form_data(valid, hostile), label="sent")
    with example_rolled_back():
        inputs = services.simulation_inputs(world.convention)
        form = forms.SimulationForm(query_dict(sent), inputs=inputs)
        valid_form = check_form(form, sent)
        if valid_form:
            adjustment = form.adjustment()
            assert all(type(v) is Decimal for v in adjustment.unit_costs.values())
            assert all(type(v) is Decimal for v in adjustment.units.values())
        client.force_login(world.personas.manager)
        url = reverse("costing:simulation", args=[world.convention.reference])
        response, _refused = submit(client, url, sent, method="get")
        if response.status_code == 200 and "simuler" in sent:
            simulated = response.context["simulated"]
            outcome(not simulated)
            if valid_form and "avenant" not in sent:
                assert simulated
                assert all(type(row.simulated) is Decimal for row in response.context["rows"])


# --- defects the fuzzing found, kept as plain tests -----------------------------------------------


def test_a_tampered_grid_naming_a_signalling_nan_saves_the_cells_as_typed(client, world):
    """Before: a 500 (decimal.InvalidOperation): a signalling NaN cannot even be compared."""
    commune = world.territory.commune_a
    client.force_login(world.personas.manager)
    url = reverse("costing:usage-grid", args=[world.convention.reference, world.service.code, 2026])
    response = client.post(
        url, {f"q_{commune.pk}_5": "2,5", "loaded": json.dumps({f"{commune.pk}_5": "sNaN"})}
    )
    assert response.status_code == 302
    stored = services.usage_grid_values(
        convention=world.convention, service=world.service, year=2026
    )
    assert stored[(commune.pk, 5)] == Decimal("2.5")


def test_a_notification_dated_year_one_is_refused_with_its_reason(client, world):
    """Before: 01/01/0001 was recorded as the notification date of the unit cost."""
    base = world.bases[2027]
    client.force_login(world.personas.finance)
    response = client.post(
        reverse("costing:unit-cost-notify", args=[base.pk]),
        {"notified_on": "0001-01-01"},
        follow=True,
    )
    assert "Date de notification invalide : Date invraisemblable (01/01/0001)" in (
        response.content.decode().replace("&#x27;", "'")
    )
    assert services.current_unit_cost(base.service, 2027).notified_on is None


def test_an_edited_cost_line_reading_a_signalling_nan_is_refused_in_french(client, world):
    """Before: a 500 (decimal.InvalidOperation): Django compares the value with the line's
    amount to know whether it changed, before refusing it."""
    base = world.bases[2026]
    line = base.lines.get()
    client.force_login(world.personas.finance)
    data = {
        "version": base.version,
        "service": base.service_id,
        "year": "2026",
        "source": base.source,
        "source_year": base.source_year,
        "reference_units": "1",
        "reference_basis": base.reference_basis,
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-0-id": line.pk,
        "lines-0-label": line.label,
        "lines-0-category": line.category,
        "lines-0-account": line.account,
        "lines-0-accounts_amount": "sNaN",
        "lines-0-budget_adjustment": "0",
    }
    response = client.post(reverse("costing:cost-base-edit", args=[base.pk]), data)
    assert response.status_code == 200
    assert "Saisissez un nombre." in response.content.decode()
    line.refresh_from_db()
    assert line.accounts_amount == Decimal("36500.00")


def test_an_acompte_paid_in_year_one_is_refused_with_its_reason(client, world):
    """Before: 01/01/0001 was recorded as the acompte's payment date."""
    instalment = world.instalment
    Instalment.objects.filter(pk=instalment.pk).update(
        status=InstalmentStatus.TITRE_ISSUED, titre_number="T-2026-1"
    )
    client.force_login(world.personas.finance)
    url = reverse("costing:instalment-action", args=[instalment.pk, "encaissement"])
    response = client.post(url, {"paid_on": "0001-01-01"}, follow=True)
    assert "Encaissé le : Date invraisemblable (01/01/0001)" in response.content.decode()
    instalment.refresh_from_db()
    assert (instalment.status, instalment.paid_on) == (InstalmentStatus.TITRE_ISSUED, None)
