"""Fuzzing of the conventions forms, through their screens as the manager and directly: hostile
values never give a 500, a refusal writes nothing, what is accepted is stored as typed (see
tests/fuzz.py for the values and the properties)."""

from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from hypothesis import event, given
from hypothesis import strategies as st

from conventions import forms
from conventions.filters import ConventionFilter
from conventions.models import (
    Amendment,
    Convention,
    ConventionKind,
    Deliberation,
    ImpactSheet,
    StaffBodyOpinion,
    Status,
    Terms,
)
from conventions.services import in_force
from mutualisation.documents import render_pdf
from tests.conventions.conftest import add_deliberations, mad_descendante, service_commun  # noqa: F401
from tests.factories import (
    ConventionFactory,
    EpciFactory,
    EpciMembershipFactory,
    OrganisationFactory,
    ServiceFactory,
)
from tests.fuzz import (
    assert_stored,
    budget,
    check_form,
    date_text,
    decimal_text,
    example_rolled_back,
    form_data,
    formset_fields,
    fuzzes,
    hostile_boolean,
    hostile_choice,
    hostile_date,
    hostile_number,
    hostile_text,
    query_dict,
    submit,
    text_up_to,
    upload,
    year_text,
)

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2026, 11, 28)
KINDS = [kind.value for kind in ConventionKind]
PAST = date_text(date(2024, 1, 1), TODAY)


@pytest.fixture
def world(territory, personas, mad_descendante, service_commun):  # noqa: F811
    """A draft mise à disposition and a draft service commun of the EPCI and communes A and B,
    seen on 28 November 2026, with what is not offered: a commune of another EPCI, another
    EPCI, and a member commune outside the conventions."""
    with time_machine.travel(datetime(2026, 11, 28, 10, tzinfo=PARIS)):
        newcomer = OrganisationFactory(name="Commune nouvelle")
        EpciMembershipFactory(member=newcomer, epci=territory.epci, valid_from=date(2020, 1, 1))
        other_epci = EpciFactory(name="Autre EPCI")
        stranger = OrganisationFactory(name="Commune étrangère")
        EpciMembershipFactory(member=stranger, epci=other_epci, valid_from=date(2020, 1, 1))
        yield SimpleNamespace(
            **vars(territory),
            personas=personas,
            mad=mad_descendante,
            commun=service_commun,
            newcomer=newcomer,
            other_epci=other_epci,
            stranger=stranger,
            service=mad_descendante.service,
            other_service=ServiceFactory(provider=territory.epci),
        )


def outcome(refused):
    event("refusé" if refused else "accepté")


def organisations(world, *offered):
    """A valid choice among ``offered``, and the hostile ones: what is not offered."""
    return (
        st.sampled_from([str(o.pk) for o in offered]),
        hostile_choice(world.stranger.pk, world.other_epci.pk, world.newcomer.pk),
    )


def optional(strategy):
    return st.one_of(st.just(""), strategy)


# --- the convention, its terms, parties, services, deliberations and forecasts --------------------


def convention_fields(world):
    valid = {
        "title": text_up_to(250),
        "kind": st.sampled_from(KINDS),
        "object": text_up_to(None),
        "preamble": optional(text_up_to(None)),
        "managing_organisation": st.sampled_from(["", "", str(world.epci.pk)]),
        "start_date": date_text(date(2025, 1, 1), date(2027, 12, 31)),
        "retroactivity_reason": optional(text_up_to(None)),
        "retained_service_basis": optional(text_up_to(300)),
        "clect_report_on": optional(PAST),
    }
    hostile = {
        "title": hostile_text,
        "kind": hostile_choice("AUTRE", "mise_a_disposition"),
        "object": hostile_text,
        "preamble": hostile_text,
        "managing_organisation": organisations(world)[1],
        "start_date": hostile_date,
        "retroactivity_reason": hostile_text,
        "retained_service_basis": hostile_text,
        "clect_report_on": hostile_date,
        "version": hostile_number,
    }
    return valid, hostile


def terms_fields(prefix="terms-"):
    valid = {
        "settlement_mode": st.sampled_from(["TITRE", "AC_IMPUTATION", "MIXED"]),
        "periodicity_months": st.integers(1, 12).map(str),
        "instalment_count": st.integers(0, 12).map(str),
        "unit_cost_method": optional(text_up_to(None)),
        "end_date": optional(date_text(date(2027, 1, 1), date(2040, 12, 31))),
        "tacit_renewal": st.sampled_from(["", "on"]),
        "notice_months": st.integers(0, 24).map(str),
        "managing_share_mode": st.sampled_from(["", "NONE", "FIXED_PERCENT", "WEIGHT"]),
        "managing_share_value": optional(decimal_text(100, 3)),
    }
    hostile = {
        "settlement_mode": hostile_choice("CHEQUE"),
        "periodicity_months": hostile_number,
        "instalment_count": hostile_number,
        "unit_cost_method": hostile_text,
        "end_date": hostile_date,
        "tacit_renewal": hostile_boolean,
        "notice_months": hostile_number,
        "managing_share_mode": hostile_choice("ALL"),
        "managing_share_value": hostile_number,
    }
    return (
        {prefix + name: value for name, value in valid.items()},
        {prefix + name: value for name, value in hostile.items()},
    )


def party_row(world, deletable):
    valid_organisation, hostile_organisation = organisations(
        world, world.epci, world.commune_a, world.commune_b
    )
    row = {
        "organisation": (valid_organisation, hostile_organisation),
        # A role the kind forbids (a member in a mise à disposition…) is a valid choice here.
        "role": (
            st.sampled_from(["PROVIDER", "BENEFICIARY", "MEMBER"]),
            hostile_choice("OWNER", "provider"),
        ),
    }
    if deletable:
        row["DELETE"] = (st.sampled_from(["", "", "on"]), hostile_boolean)
    return row


def service_row(world, deletable):
    row = {
        "service": (
            st.sampled_from([str(world.service.pk), str(world.other_service.pk)]),
            hostile_choice(0),
        ),
        "unit_type": (
            st.sampled_from(["", str(world.service.unit_type_id)]),
            hostile_choice(),
        ),
        "allocation_key": (
            st.sampled_from(["", "UNITS", "POPULATION", "FIXED_SHARES"]),
            hostile_choice("SURFACE"),
        ),
        "population_vintage": (optional(year_text(2015, 2026)), hostile_number),
    }
    if deletable:
        row["DELETE"] = (st.sampled_from(["", "", "on"]), hostile_boolean)
    return row


def deliberation_fields(world, *offered):
    valid_organisation, hostile_organisation = organisations(world, *offered)
    valid = {
        "organisation": valid_organisation,
        "assembly": text_up_to(120),
        "date": PAST,
        "number": text_up_to(40),
        "object": optional(text_up_to(300)),
        "vote": st.sampled_from(["ADOPTED", "REJECTED"]),
        "votes_for": optional(st.integers(0, 200).map(str)),
        "votes_against": optional(st.integers(0, 200).map(str)),
        "abstentions": optional(st.integers(0, 200).map(str)),
        "link": st.sampled_from(["", "https://actes.exemple.fr/d/12", "actes.exemple.fr/x"]),
        "designates_manager": st.sampled_from(["", "on"]),
    }
    hostile = {
        "organisation": hostile_organisation,
        "assembly": hostile_text,
        "date": hostile_date,
        "number": hostile_text,
        "object": hostile_text,
        "vote": hostile_choice("ABSTAINED"),
        "votes_for": hostile_number,
        "votes_against": hostile_number,
        "abstentions": hostile_number,
        "link": st.one_of(
            st.sampled_from(
                ["javascript:alert(1)", "http://", "https://exemple.invalid/" + "a" * 300]
            ),
            hostile_text,
        ),
        "designates_manager": hostile_boolean,
    }
    return valid, hostile


def forecast_row(world, line, deletable):
    valid_beneficiary, hostile_beneficiary = organisations(world, world.commune_a, world.commune_b)
    row = {
        "service": (st.just(str(line.pk)), hostile_choice(0)),
        "beneficiary": (valid_beneficiary, hostile_beneficiary),
        "year": (year_text(2026, 2029), hostile_number),
        "units": (decimal_text(10**6, 3), hostile_number),
        "fixed_share_percent": (optional(decimal_text(100, 3)), hostile_number),
    }
    if deletable:
        row["DELETE"] = (st.sampled_from(["", "", "on"]), hostile_boolean)
    return row


def merge(*pairs):
    valid, hostile = {}, {}
    for pair_valid, pair_hostile in pairs:
        valid |= pair_valid
        hostile |= pair_hostile
    return valid, hostile


@fuzzes(
    forms.ConventionForm,
    forms.TermsForm,
    forms.NewPartyFormSet,
    forms.ServiceFormSet,
    forms.ConventionServiceForm,
)
@budget(0.75)  # a heavy page: the convention and its formsets
@given(st.data())
def test_creating_a_convention_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    valid, hostile = merge(
        convention_fields(world),
        terms_fields(),
        formset_fields("parties", [(None, party_row(world, False)) for _ in range(3)]),
        formset_fields("services", [(None, service_row(world, True))]),
    )
    sent = data.draw(form_data(valid, hostile), label="sent")
    with example_rolled_back():
        convention = Convention()
        main = forms.ConventionForm(query_dict(sent), instance=convention)
        terms = forms.TermsForm(query_dict(sent), instance=Terms(), prefix="terms")
        parties = forms.NewPartyFormSet(query_dict(sent), instance=convention, prefix="parties")
        services = forms.ServiceFormSet(query_dict(sent), instance=convention, prefix="services")
        valid_forms = [check_form(form, sent) for form in (main, terms, parties, services)]
        client.force_login(world.personas.manager)
        _response, refused = submit(client, reverse("conventions:create"), sent)
        outcome(refused)
        if not all(valid_forms):
            assert refused
        if not refused:
            created = Convention.objects.latest("pk")
            assert_stored(created, main.cleaned_data)
            assert_stored(created.terms.get(), terms.cleaned_data)


@pytest.fixture
def editable(world):
    """The draft mise à disposition with a deliberation of the EPCI already entered."""
    convention = world.mad.convention
    add_deliberations(convention, [world.epci])
    return convention


@fuzzes(
    forms.ConventionForm,
    forms.TermsForm,
    forms.PartyFormSet,
    forms.ServiceFormSet,
    forms.DeliberationFormSet,
    forms.DeliberationForm,
    forms.ForecastFormSet,
    forms.UsageForecastForm,
)
@budget(0.5)  # the heaviest page: every formset of a convention
@given(st.data())
def test_editing_a_convention_never_breaks_and_a_refusal_writes_nothing(
    client, world, editable, data
):
    convention = editable
    parties = list(convention.parties.all())
    lines = list(convention.services.all())
    deliberations = list(convention.deliberations.all())
    forecasts = list(in_force.initial_terms(convention).forecasts.all())
    deliberation_valid, deliberation_hostile = deliberation_fields(
        world, world.epci, world.commune_a, world.commune_b
    )
    deliberation_row = {
        name: (deliberation_valid[name], deliberation_hostile[name]) for name in deliberation_valid
    } | {"DELETE": (st.sampled_from(["", "", "on"]), hostile_boolean)}
    valid, hostile = merge(
        convention_fields(world),
        terms_fields(),
        formset_fields(
            "parties",
            [(p.pk, party_row(world, True)) for p in parties] + [(None, party_row(world, True))],
        ),
        formset_fields(
            "services",
            [(line.pk, service_row(world, True)) for line in lines]
            + [(None, service_row(world, True))],
        ),
        formset_fields(
            "deliberations",
            [(d.pk, deliberation_row) for d in deliberations] + [(None, deliberation_row)],
        ),
        formset_fields(
            "forecasts",
            [(f.pk, forecast_row(world, lines[0], True)) for f in forecasts]
            + [(None, forecast_row(world, lines[0], True))],
        ),
    )
    valid["version"] = st.sampled_from([str(convention.version)] * 4 + ["0"])
    sent = data.draw(form_data(valid, hostile), label="sent")
    with example_rolled_back():
        fresh = Convention.objects.get(pk=convention.pk)
        terms = in_force.initial_terms(fresh)
        main = forms.ConventionForm(query_dict(sent), instance=fresh)
        checked = [
            main,
            forms.TermsForm(query_dict(sent), instance=terms, prefix="terms"),
            forms.PartyFormSet(query_dict(sent), instance=fresh, prefix="parties"),
            forms.ServiceFormSet(query_dict(sent), instance=fresh, prefix="services"),
            forms.DeliberationFormSet(
                query_dict(sent),
                instance=fresh,
                prefix="deliberations",
                form_kwargs={"convention": fresh},
            ),
            forms.ForecastFormSet(
                query_dict(sent),
                instance=terms,
                prefix="forecasts",
                form_kwargs={"convention": fresh},
            ),
        ]
        valid_forms = [check_form(form, sent) for form in checked]
        client.force_login(world.personas.manager)
        url = reverse("conventions:edit", args=[convention.reference])
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not all(valid_forms):
            assert refused
        if not refused:
            assert_stored(
                Convention.objects.get(pk=convention.pk),
                {k: v for k, v in main.cleaned_data.items() if k != "version"},
            )


# --- records attached to a convention ------------------------------------------------------------


def opinion_fields(world):
    valid_organisation, hostile_organisation = organisations(
        world, world.epci, world.commune_a, world.commune_b
    )
    valid = {
        "organisation": valid_organisation,
        "body": st.sampled_from(["CST", "CDG", "CT", "CAP", "CCP"]),
        "body_name": optional(text_up_to(200)),
        "date": PAST,
        "opinion": st.sampled_from(["FAVOURABLE", "UNFAVOURABLE", "SPLIT"]),
    }
    hostile = {
        "organisation": hostile_organisation,
        "body": hostile_choice("CSE"),
        "body_name": hostile_text,
        "date": hostile_date,
        "opinion": hostile_choice("NEUTRAL"),
    }
    return valid, hostile


@pytest.fixture
def entered(world):
    """An opinion and a deliberation already entered on the draft service commun."""
    convention = world.commun.convention
    add_deliberations(convention, [world.epci])
    opinion = StaffBodyOpinion.objects.create(
        convention=convention, organisation=world.epci, body="CST", date=date(2025, 11, 15),
        opinion="FAVOURABLE",
    )  # fmt: skip
    return SimpleNamespace(
        convention=convention, opinion=opinion, deliberation=convention.deliberations.get()
    )


@fuzzes(forms.OpinionForm, forms.DeliberationForm)
@budget()
@given(st.data())
def test_entering_or_correcting_an_opinion_or_deliberation_never_breaks(
    client, world, entered, data
):
    kind = data.draw(st.sampled_from(["avis", "avis-modifier", "deliberation-modifier"]))
    convention = entered.convention
    if kind == "deliberation-modifier":
        fields = deliberation_fields(world, world.epci, world.commune_a, world.commune_b)
        form_class, record = forms.DeliberationForm, entered.deliberation
        url = reverse(
            "conventions:record-edit", args=[convention.reference, "deliberation", record.pk]
        )
    else:
        fields = opinion_fields(world)
        form_class = forms.OpinionForm
        record = entered.opinion if kind == "avis-modifier" else None
        url = (
            reverse("conventions:record-edit", args=[convention.reference, "avis", record.pk])
            if record
            else reverse("conventions:add-related", args=[convention.reference, "avis"])
        )
    sent = data.draw(form_data(*fields), label="sent")
    with example_rolled_back():
        instance = type(record).objects.get(pk=record.pk) if record else None
        form = form_class(query_dict(sent), instance=instance, convention=convention)
        valid = check_form(form, sent)
        client.force_login(world.personas.manager)
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            stored = record or StaffBodyOpinion.objects.latest("pk")
            assert_stored(stored, form.cleaned_data)


@fuzzes(forms.NewDeliberationFormSet, forms.NewDeliberationForm)
@budget()
@given(st.data())
def test_adding_deliberations_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    """The page adding the parties' deliberations: rows pre-filled for communes A and B, some
    filled in, others left as they came."""
    convention = world.mad.convention
    valid_fields, hostile_fields = deliberation_fields(
        world, world.epci, world.commune_a, world.commune_b
    )
    rows = []
    for commune in (world.commune_a, world.commune_b):
        untouched = {"organisation": st.just(str(commune.pk)), "vote": st.just("ADOPTED")}
        filled = {name: (valid_fields[name], hostile_fields[name]) for name in valid_fields}
        if data.draw(st.booleans(), label=f"row {commune} left as it came"):
            filled = {name: (value, value) for name, value in untouched.items()}
        rows.append((None, filled))
    sent = data.draw(form_data(*formset_fields("deliberations", rows)), label="sent")
    with example_rolled_back():
        fresh = Convention.objects.get(pk=convention.pk)
        formset = forms.NewDeliberationFormSet(
            query_dict(sent),
            instance=fresh,
            prefix="deliberations",
            initial=[{"organisation": world.commune_a.pk}, {"organisation": world.commune_b.pk}],
            form_kwargs={"convention": fresh},
        )
        valid = check_form(formset, sent)
        client.force_login(world.personas.manager)
        url = reverse("conventions:deliberation-add", args=[convention.reference])
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            for form in formset.forms:
                if form.has_changed():
                    cleaned = form.cleaned_data
                    stored = fresh.deliberations.get(
                        organisation=cleaned["organisation"], number=cleaned["number"]
                    )
                    assert_stored(stored, {k: v for k, v in cleaned.items() if k != "id"})


@fuzzes(forms.ImpactSheetForm)
@budget()
@given(
    data=form_data(
        {
            "established_on": PAST,
            "organisation_and_working_conditions": text_up_to(None),
            "pay": text_up_to(None),
            "acquired_rights": text_up_to(None),
            "agreements": optional(text_up_to(None)),
        },
        {
            "established_on": hostile_date,
            "organisation_and_working_conditions": hostile_text,
            "pay": hostile_text,
            "acquired_rights": hostile_text,
            "agreements": hostile_text,
        },
    )
)
def test_the_impact_sheet_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    convention = world.commun.convention
    with example_rolled_back():
        form = forms.ImpactSheetForm(query_dict(data))
        valid = check_form(form, data)
        client.force_login(world.personas.manager)
        url = reverse("conventions:add-related", args=[convention.reference, "fiche-impact"])
        _response, refused = submit(client, url, data)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            assert_stored(ImpactSheet.objects.get(convention=convention), form.cleaned_data)


@fuzzes(forms.AgentForm)
@budget()
@given(st.data())
def test_an_agent_never_breaks_and_a_refusal_writes_nothing(client, world, data):
    valid_employer, hostile_employer = organisations(world, world.epci, world.commune_a)
    sent = data.draw(
        form_data(
            {
                "agent_ref": text_up_to(40),
                "job_title": optional(text_up_to(200)),
                "employer": valid_employer,
                "regime": st.sampled_from(["TRANSFER", "MAD_BY_LAW", "MAD_INDIVIDUAL"]),
                "share_percent": decimal_text(100, 2),
                "functional_authority": text_up_to(200),
                "hierarchical_authority": text_up_to(200),
                "agent_consent": st.sampled_from(["", "on"]),
                "start_date": PAST,
                "end_date": optional(date_text(date(2026, 1, 1), date(2030, 12, 31))),
            },
            {
                "agent_ref": hostile_text,
                "job_title": hostile_text,
                "employer": hostile_employer,
                "regime": hostile_choice("CDD"),
                "share_percent": hostile_number,
                "functional_authority": hostile_text,
                "hierarchical_authority": hostile_text,
                "agent_consent": hostile_boolean,
                "start_date": hostile_date,
                "end_date": hostile_date,
            },
        ),
        label="sent",
    )
    convention = world.commun.convention
    with example_rolled_back():
        form = forms.AgentForm(query_dict(sent), convention=convention)
        valid = check_form(form, sent)
        client.force_login(world.personas.manager)
        url = reverse("conventions:add-related", args=[convention.reference, "agent"])
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            assert_stored(convention.agents.latest("pk"), form.cleaned_data)


@pytest.fixture(scope="module")
def small_pdf():
    return render_pdf("pdf/base.html", {})


@fuzzes(forms.AttachmentForm)
@budget()
@given(
    title=st.one_of(text_up_to(200), hostile_text),
    name=st.sampled_from(
        [
            "convention.pdf",
            "CONVENTION.PDF",
            "x.pdf.exe",
            "x.txt",
            "../../x.pdf",
            "é😀.pdf",
            "a" * 240 + ".pdf",
            ".pdf",
        ]
    ),  # fmt: skip
    content=st.one_of(
        st.just("pdf"),
        st.sampled_from([b"", b"%PDF-", b"%PDF-1.7\n%%EOF", b"%PDF-1.4\n1 0 obj<<>>endobj\n"]),
        st.binary(max_size=300).map(lambda b: b"%PDF-1.7\n" + b),
        st.binary(max_size=300),
    ),
    truncate=st.integers(0, 100),
)
def test_a_signed_scan_never_breaks_and_a_refusal_writes_nothing(
    client, world, small_pdf, title, name, content, truncate
):
    if content == "pdf":
        content = small_pdf[: len(small_pdf) * truncate // 100] if truncate < 100 else small_pdf
    convention = world.mad.convention
    sent = {"title": title}
    with example_rolled_back():
        form = forms.AttachmentForm(query_dict(sent), {"file": upload(name, content)})
        valid = check_form(form, sent)
        client.force_login(world.personas.manager)
        url = reverse("conventions:add-related", args=[convention.reference, "piece-jointe"])
        _response, refused = submit(client, url, sent, files={"file": upload(name, content)})
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            stored = convention.attachments.latest("pk")
            assert stored.title == form.cleaned_data["title"]
            assert bytes(stored.file.read()) == content


@fuzzes(forms.DeliberationPublicityForm)
@budget()
@given(
    data=form_data(
        {
            "transmitted_on": optional(PAST),
            "acknowledgement_number": optional(text_up_to(60)),
            "published_on": optional(PAST),
        },
        {
            "transmitted_on": hostile_date,
            "acknowledgement_number": hostile_text,
            "published_on": hostile_date,
        },
    )
)
def test_a_deliberations_publicity_never_breaks_and_a_refusal_writes_nothing(
    client, world, entered, data
):
    deliberation = entered.deliberation
    with example_rolled_back():
        form = forms.DeliberationPublicityForm(
            query_dict(data), instance=Deliberation.objects.get(pk=deliberation.pk)
        )
        valid = check_form(form, data)
        client.force_login(world.personas.manager)
        url = reverse(
            "conventions:deliberation-publicity",
            args=[entered.convention.reference, deliberation.pk],
        )
        _response, refused = submit(client, url, data)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            assert_stored(Deliberation.objects.get(pk=deliberation.pk), form.cleaned_data)


# --- signature, publicity, avenants, termination ---------------------------------------------


def set_status(convention, status, **extra):
    Convention.objects.filter(pk=convention.pk).update(status=status, **extra)
    return Convention.objects.get(pk=convention.pk)


@pytest.fixture
def deliberated(world):
    """The mise à disposition, deliberated by its three parties: ready to be signed."""
    convention = world.mad.convention
    add_deliberations(convention, [world.epci, world.commune_a, world.commune_b])
    return set_status(convention, Status.DELIBERATED)


@fuzzes(forms.SignatureForm)
@budget(0.5)
@given(
    name=st.sampled_from(
        [
            "sign",
            "sign",
            "submit",
            "deliberate",
            "enter_into_force",
            "expire",
            "withdraw",
            "delete",
            "__init__",
            "SIGN",
        ]
    ),  # fmt: skip
    data=form_data(
        {"signature_date": date_text(date(2025, 12, 10), TODAY)}, {"signature_date": hostile_date}
    ),  # fmt: skip
)
def test_a_transition_never_breaks_and_a_refusal_writes_nothing(
    client, world, deliberated, name, data
):
    convention = deliberated
    with example_rolled_back():
        check_form(forms.SignatureForm(query_dict(data)), data)
        client.force_login(world.personas.manager)
        url = reverse("conventions:transition", args=[convention.reference, name])
        _response, refused = submit(client, url, data)
        outcome(refused)


@pytest.fixture
def signed(world):
    return set_status(world.mad.convention, Status.SIGNED, signature_date=date(2025, 12, 20))


@fuzzes(forms.ConventionPublicityForm)
@budget()
@given(
    data=form_data(
        {
            "transmitted_on": date_text(date(2025, 12, 20), TODAY),
            "acknowledgement_number": text_up_to(60),
            "notified_on": date_text(date(2025, 12, 20), TODAY),
        },
        {
            "transmitted_on": hostile_date,
            "acknowledgement_number": hostile_text,
            "notified_on": hostile_date,
        },
    )
)
def test_a_conventions_publicity_never_breaks_and_a_refusal_writes_nothing(
    client, world, signed, data
):
    convention = signed
    with example_rolled_back():
        form = forms.ConventionPublicityForm(query_dict(data))
        valid = check_form(form, data)
        client.force_login(world.personas.manager)
        url = reverse("conventions:publicity", args=[convention.reference])
        _response, refused = submit(client, url, data)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            convention.refresh_from_db()
            assert convention.transmitted_on == form.cleaned_data["transmitted_on"]
            assert convention.notified_on == form.cleaned_data["notified_on"]
            assert convention.acknowledgement_number == form.cleaned_data["acknowledgement_number"]


@pytest.fixture
def in_force_mad(world):
    """The mise à disposition in force (and the service commun too)."""
    set_status(world.commun.convention, Status.IN_FORCE, signature_date=date(2025, 12, 20))
    return set_status(world.mad.convention, Status.IN_FORCE, signature_date=date(2025, 12, 20))


@fuzzes(forms.AmendmentForm, forms.TermsForm)
@budget()
@given(st.data())
def test_an_avenant_never_breaks_and_a_refusal_writes_nothing(client, world, in_force_mad, data):
    commun = data.draw(st.booleans(), label="service commun")
    convention = Convention.objects.get(
        pk=world.commun.convention.pk if commun else in_force_mad.pk
    )
    party = convention.parties.exclude(role="PROVIDER").exclude(organisation=world.epci).first()
    line = convention.services.first()
    valid, hostile = merge(
        (
            {
                "object": text_up_to(None),
                "effective_from": date_text(date(2026, 1, 1), date(2027, 12, 31)),
                "joining": st.lists(st.just(str(world.newcomer.pk)), max_size=1),
                "leaving": st.lists(st.just(str(party.pk)), max_size=1),
                "new_service": st.sampled_from(["", str(world.other_service.pk)]),
                "new_unit_type": st.sampled_from(["", str(world.service.unit_type_id)]),
                "new_allocation_key": st.sampled_from(["", "UNITS", "POPULATION"]),
                "new_population_vintage": optional(year_text(2015, 2026)),
                "removed_services": st.lists(st.just(str(line.pk)), max_size=1),
                "impact_established_on": optional(PAST),
                "impact_summary": optional(text_up_to(None)),
            },
            {
                "object": hostile_text,
                "effective_from": hostile_date,
                # Not offered: a commune of another EPCI, a party already in, the provider.
                "joining": st.lists(
                    hostile_choice(world.stranger.pk, world.commune_a.pk, world.epci.pk),
                    min_size=1,
                    max_size=3,
                ),
                "leaving": st.lists(hostile_choice(world.epci.pk, 0), min_size=1, max_size=2),
                "new_service": hostile_choice(world.service.pk),
                "new_unit_type": hostile_choice(),
                "new_allocation_key": hostile_choice("SURFACE"),
                "new_population_vintage": hostile_number,
                "removed_services": st.lists(hostile_choice(), min_size=1, max_size=2),
                "impact_established_on": hostile_date,
                "impact_summary": hostile_text,
            },
        ),
        terms_fields(),
    )
    sent = data.draw(form_data(valid, hostile), label="sent")
    with example_rolled_back():
        current = in_force.current_terms(convention)
        form = forms.AmendmentForm(query_dict(sent), convention=convention)
        terms = forms.TermsForm(
            query_dict(sent),
            instance=Terms(**in_force.terms_values(current)),
            prefix="terms",
            start_date=convention.start_date,
        )
        valid_forms = [check_form(form, sent), check_form(terms, sent)]
        client.force_login(world.personas.manager)
        url = reverse("conventions:amendment-create", args=[convention.reference])
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not all(valid_forms):
            assert refused
        if not refused:
            amendment = convention.amendments.latest("pk")
            assert_stored(amendment, form.cleaned_data)


@pytest.fixture
def draft_amendment(client, world, in_force_mad):
    """A draft avenant on the mise à disposition in force: the « commune nouvelle » joins."""
    client.force_login(world.personas.manager)
    response = client.post(
        reverse("conventions:amendment-create", args=[in_force_mad.reference]),
        {
            "object": "Entrée d'une commune",
            "effective_from": "2026-07-01",
            "joining": [world.newcomer.pk],
            "terms-settlement_mode": "TITRE",
            "terms-periodicity_months": "12",
            "terms-instalment_count": "4",
            "terms-unit_cost_method": "Coût / unités.",
            "terms-notice_months": "3",
        },
    )
    assert response.status_code == 302
    return in_force_mad.amendments.get()


@fuzzes(forms.DeliberationForm, forms.OpinionForm, forms.SignatureForm)
@budget()
@given(st.data())
def test_an_avenants_deliberation_opinion_and_signature_never_break(
    client, world, draft_amendment, data
):
    convention = draft_amendment.convention
    what = data.draw(st.sampled_from(["deliberation", "avis", "signer"]), label="what")
    parties = (world.epci, world.commune_a, world.commune_b, world.newcomer)
    if what == "deliberation":
        fields = deliberation_fields(world, *parties)
        form_class, name = forms.DeliberationForm, "conventions:amendment-deliberation"
    elif what == "avis":
        fields = opinion_fields(world)
        form_class, name = forms.OpinionForm, "conventions:amendment-opinion"
    else:
        fields = (
            {"signature_date": date_text(date(2026, 1, 1), TODAY)},
            {"signature_date": hostile_date},
        )
        form_class, name = forms.SignatureForm, "conventions:amendment-sign"
    sent = data.draw(form_data(*fields), label="sent")
    number = data.draw(st.sampled_from([draft_amendment.number] * 5 + [99]), label="number")
    with example_rolled_back():
        kwargs = {} if form_class is forms.SignatureForm else {"convention": convention}
        valid = check_form(form_class(query_dict(sent), **kwargs), sent)
        client.force_login(world.personas.manager)
        url = reverse(name, args=[convention.reference, number])
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid:
            assert refused


@fuzzes(forms.ForecastFormSet, forms.UsageForecastForm)
@budget()
@given(st.data())
def test_an_avenants_forecasts_never_break_and_a_refusal_writes_nothing(
    client, world, draft_amendment, data
):
    convention = draft_amendment.convention
    line = convention.services.first()
    existing = list(draft_amendment.terms.forecasts.all())
    valid, hostile = formset_fields(
        "forecasts",
        [(f.pk, forecast_row(world, line, True)) for f in existing]
        + [(None, forecast_row(world, line, True))],
    )
    sent = data.draw(form_data(valid, hostile), label="sent")
    with example_rolled_back():
        formset = forms.ForecastFormSet(
            query_dict(sent),
            instance=Amendment.objects.get(pk=draft_amendment.pk).terms,
            prefix="forecasts",
            form_kwargs={"convention": convention},
        )
        valid_forms = check_form(formset, sent)
        client.force_login(world.personas.manager)
        url = reverse(
            "conventions:amendment-forecasts", args=[convention.reference, draft_amendment.number]
        )
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid_forms:
            assert refused


@fuzzes(forms.TerminationForm)
@budget()
@given(st.data())
def test_a_termination_never_breaks_and_a_refusal_writes_nothing(client, world, in_force_mad, data):
    valid_requester, hostile_requester = organisations(world, world.epci, world.commune_a)
    sent = data.draw(
        form_data(
            {
                "notified_on": date_text(date(2026, 1, 1), TODAY),
                "effective_on": date_text(date(2026, 6, 1), date(2028, 12, 31)),
                "requested_by": valid_requester,
                "reason": text_up_to(None),
                "agents_outcome": text_up_to(None),
                "assets_outcome": optional(text_up_to(None)),
            },
            {
                "notified_on": hostile_date,
                "effective_on": hostile_date,
                "requested_by": hostile_requester,
                "reason": hostile_text,
                "agents_outcome": hostile_text,
                "assets_outcome": hostile_text,
            },
        ),
        label="sent",
    )
    with example_rolled_back():
        form = forms.TerminationForm(query_dict(sent), convention=in_force_mad)
        valid = check_form(form, sent)
        client.force_login(world.personas.manager)
        url = reverse("conventions:terminate", args=[in_force_mad.reference])
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            assert_stored(Convention.objects.get(pk=in_force_mad.pk).termination, form.cleaned_data)


# --- the list's filters ------------------------------------------------------------------------


@fuzzes(ConventionFilter)
@budget()
@given(st.data())
def test_the_list_filters_read_hostile_query_strings_without_breaking(client, world, data):
    names = list(ConventionFilter.base_filters)
    params = data.draw(
        form_data(
            {name: st.just("") for name in names}
            | {"page": st.just("1"), "sort": st.just("reference")},
            {name: st.one_of(hostile_choice(world.stranger.pk), hostile_number) for name in names}
            | {
                "page": hostile_number,
                "sort": hostile_choice("-reference", "password", "__class__"),
            },
        ),
        label="params",
    )
    persona = data.draw(st.sampled_from(["manager", "reader_a", "finance"]), label="persona")
    htmx = data.draw(st.booleans(), label="htmx")
    with example_rolled_back():
        user = getattr(world.personas, persona)
        filterset = ConventionFilter(
            query_dict(params), queryset=Convention.objects.all(), user=user
        )
        check_form(filterset.form, params)
        list(filterset.qs)
        client.force_login(user)
        extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        submit(client, reverse("conventions:list"), params, method="get", **extra)


@budget()
@given(st.data())
def test_the_organisation_search_reads_hostile_text_without_breaking(client, world, data):
    """The list filter's search endpoint: any typed text gives JSON, at most 20 organisations,
    only those the persona may see."""
    from mutualisation.models import Organisation

    typed = data.draw(hostile_number, label="q")
    persona = data.draw(st.sampled_from(["manager", "reader_a"]), label="persona")
    user = getattr(world.personas, persona)
    client.force_login(user)
    response = client.get(reverse("conventions:organisations"), {"q": typed})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) <= 20
    visible = set(Organisation.objects.visible_to(user).values_list("siren", flat=True))
    assert {row["siren"] for row in results} <= visible


# --- defects the fuzzing found, kept as plain tests -----------------------------------------------


def agent_data(world, **extra):
    return {
        "agent_ref": "AG-1",
        "employer": world.epci.pk,
        "regime": "MAD_INDIVIDUAL",
        "share_percent": "50",
        "functional_authority": "Le maire",
        "hierarchical_authority": "Le président",
        "start_date": "2026-01-01",
        **extra,
    }


def test_an_agent_with_no_share_is_refused_in_french(client, world):
    """Before: a 500 (« incomplete format »): Django formats the constraint's message with %,
    and the message's own « 100 % » broke it."""
    convention = world.commun.convention
    client.force_login(world.personas.manager)
    url = reverse("conventions:add-related", args=[convention.reference, "agent"])
    response = client.post(url, agent_data(world, share_percent="0"))
    assert response.status_code == 200
    assert "La quotité est comprise entre 0 et 100 %." in response.content.decode()
    assert not convention.agents.exists()


def test_a_forecast_share_above_a_hundred_percent_is_refused_in_french(
    client, world, draft_amendment
):
    """Before: the same 500 as the agent's share, on the fixed share of a forecast."""
    convention = draft_amendment.convention
    client.force_login(world.personas.manager)
    url = reverse(
        "conventions:amendment-forecasts", args=[convention.reference, draft_amendment.number]
    )
    response = client.post(
        url,
        {
            "forecasts-TOTAL_FORMS": "1",
            "forecasts-INITIAL_FORMS": "0",
            "forecasts-0-service": convention.services.first().pk,
            "forecasts-0-beneficiary": world.newcomer.pk,
            "forecasts-0-year": "2026",
            "forecasts-0-units": "10",
            "forecasts-0-fixed_share_percent": "150",
        },
    )
    assert response.status_code == 200
    assert "Une part fixe est comprise entre 0 et 100 %." in response.content.decode()
    assert not draft_amendment.terms.forecasts.filter(beneficiary=world.newcomer).exists()


def test_two_rows_with_the_same_deliberation_are_refused_with_the_models_message(
    client, world, editable
):
    """Before: « Corrigez les données en double dans organisation et number… » (a field's code
    name, in English)."""
    from tests.conventions.test_views import edit_data

    convention = editable
    existing = convention.deliberations.get()
    row = {
        "organisation": world.commune_a.pk,
        "assembly": "Conseil municipal",
        "date": "2025-12-10",
        "number": "D-2025-12",
        "vote": "ADOPTED",
    }
    data = edit_data(
        convention, **{"deliberations-TOTAL_FORMS": "3", "deliberations-INITIAL_FORMS": "1"}
    )
    data |= {f"deliberations-0-{k}": v for k, v in {
        "id": existing.pk, "organisation": existing.organisation_id, "assembly": existing.assembly,
        "date": existing.date.isoformat(), "number": existing.number, "vote": existing.vote}.items()}  # fmt: skip
    for index in (1, 2):
        data |= {f"deliberations-{index}-{k}": v for k, v in row.items()}
    client.force_login(world.personas.manager)
    response = client.post(reverse("conventions:edit", args=[convention.reference]), data)
    assert response.status_code == 200
    assert list(response.context["formsets"]["deliberations"].non_form_errors()) == [
        "Ce numéro de délibération existe déjà pour cette organisation."
    ]
    assert convention.deliberations.count() == 1


def test_a_forged_count_of_rows_is_refused_without_building_thousands_of_forms(client, world):
    """Before: TOTAL_FORMS = 10**20 made the creation page build and render 2,000 empty rows
    (19 s, a 4 MB page)."""
    before = Convention.objects.count()
    client.force_login(world.personas.manager)
    response = client.post(
        reverse("conventions:create"),
        {
            "title": "Titre",
            "parties-TOTAL_FORMS": "99999999999999999999",
            "parties-INITIAL_FORMS": "0",
            "services-TOTAL_FORMS": "1",
            "services-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert len(response.context["formsets"]["parties"].forms) == forms.MAX_PARTIES
    assert "Veuillez soumettre au plus 200 formulaires." in response.content.decode()
    assert Convention.objects.count() == before


def forecast_rows(forecasts, changes):
    data = {
        "forecasts-TOTAL_FORMS": str(len(forecasts)),
        "forecasts-INITIAL_FORMS": str(len(forecasts)),
    }
    for index, forecast in enumerate(forecasts):
        row = {
            "id": forecast.pk,
            "service": forecast.service_id,
            "beneficiary": forecast.beneficiary_id,
            "year": forecast.year,
            "units": str(forecast.units),
            **changes.get(index, {}),
        }
        data |= {f"forecasts-{index}-{name}": value for name, value in row.items()}
    return data


def test_a_forecast_removed_frees_its_commune_for_another_row_of_the_same_form(
    client, world, draft_amendment
):
    """Before: a 500 on PostgreSQL (unique forecast per commune, service and year): the row
    taking the removed row's commune was written first."""
    convention = draft_amendment.convention
    first, second = draft_amendment.terms.forecasts.order_by("pk")[:2]
    client.force_login(world.personas.manager)
    url = reverse(
        "conventions:amendment-forecasts", args=[convention.reference, draft_amendment.number]
    )
    data = forecast_rows(
        [first, second], {0: {"beneficiary": second.beneficiary_id}, 1: {"DELETE": "on"}}
    )
    assert client.post(url, data).status_code == 302
    assert list(draft_amendment.terms.forecasts.values_list("pk", "beneficiary")) == [
        (first.pk, second.beneficiary_id)
    ]


def test_two_forecasts_exchanging_their_communes_are_refused_in_french(
    client, world, draft_amendment
):
    """Before: a 500, and on PostgreSQL (no transaction in the view) the first row was kept."""
    convention = draft_amendment.convention
    first, second = draft_amendment.terms.forecasts.order_by("pk")[:2]
    before = list(draft_amendment.terms.forecasts.values_list("pk", "beneficiary"))
    client.force_login(world.personas.manager)
    url = reverse(
        "conventions:amendment-forecasts", args=[convention.reference, draft_amendment.number]
    )
    data = forecast_rows(
        [first, second],
        {0: {"beneficiary": second.beneficiary_id}, 1: {"beneficiary": first.beneficiary_id}},
    )
    response = client.post(url, data)
    assert response.status_code == 409
    assert "Deux lignes échangent leurs valeurs" in response.content.decode()
    assert list(draft_amendment.terms.forecasts.values_list("pk", "beneficiary")) == before


def test_an_edited_forecast_reading_a_signalling_nan_is_refused_in_french(
    client, world, draft_amendment
):
    """Before: a 500 (decimal.InvalidOperation): Django compares the value with the forecast's
    units to know whether the row changed, before refusing it."""
    convention = draft_amendment.convention
    first, second = draft_amendment.terms.forecasts.order_by("pk")[:2]
    client.force_login(world.personas.manager)
    url = reverse(
        "conventions:amendment-forecasts", args=[convention.reference, draft_amendment.number]
    )
    response = client.post(url, forecast_rows([first, second], {0: {"units": "sNaN"}}))
    assert response.status_code == 200
    assert "Saisissez un nombre." in response.content.decode()
    first.refresh_from_db()
    assert first.units == Decimal("120")


@pytest.mark.parametrize("sort", ["1.5", "a.b", "-title", "title,-start_date", "password"])
def test_the_list_ignores_a_sort_naming_no_column(client, world, sort):
    """Before: « 1.5 » or « a.b » raised django-tables2's deprecation warning (an error in its
    next version, and in this suite)."""
    client.force_login(world.personas.manager)
    response = client.get(reverse("conventions:list"), {"sort": sort})
    assert response.status_code == 200
    assert world.mad.convention.reference in response.content.decode()


# --- the schéma de mutualisation ---------------------------------------------------------------


@pytest.fixture
def scheme(world):
    """The territory's scheme, transmitted in October 2026; commune A has answered."""
    from conventions.models import Opinion, SchemeOpinion
    from conventions.services import scheme as schemes
    from tests.factories import SchemeActionFactory, SchemeFactory

    plan = SchemeFactory(territory=world.epci, title="Schéma du mandat")
    SchemeActionFactory(scheme=plan, target_year=2028).communes.set([world.commune_a])
    plan = schemes.scheme_submit(plan, on=date(2026, 10, 1))
    SchemeOpinion.objects.create(
        scheme=plan, commune=world.commune_a, date=date(2026, 10, 20), opinion=Opinion.FAVOURABLE
    )
    return plan


@pytest.fixture
def draft_scheme(world):
    """A project of scheme, not yet transmitted: its text and actions still change."""
    from tests.factories import SchemeActionFactory, SchemeFactory

    plan = SchemeFactory(territory=world.epci, title="Projet de schéma")
    SchemeActionFactory(scheme=plan, target_year=2028).communes.set([world.commune_a])
    return plan


@fuzzes(forms.SchemeForm)
@budget()
@given(st.data())
def test_a_scheme_s_form_never_breaks_and_a_refusal_writes_nothing(
    client, world, draft_scheme, data
):
    from conventions.models import Scheme

    scheme = draft_scheme
    editing = data.draw(st.booleans(), label="editing")
    sent = data.draw(
        form_data(
            {
                "title": text_up_to(250),
                # a new scheme's mandate overlaps the project's (refused) or follows it
                "first_year": st.sampled_from(["2026", "2020", "2034"]),
                "last_year": year_text(2026, 2039),
                "summary": optional(text_up_to(2000)),
            },
            {
                "title": hostile_text,
                "first_year": hostile_number,
                "last_year": hostile_number,
                "summary": hostile_text,
            },
        ),
        label="sent",
    )
    with example_rolled_back():
        instance = Scheme.objects.get(pk=scheme.pk) if editing else None
        form = forms.SchemeForm(query_dict(sent), instance=instance, user=world.personas.manager)
        valid = check_form(form, sent)
        client.force_login(world.personas.manager)
        url = (
            reverse("conventions:scheme-edit", args=[scheme.pk])
            if editing
            else reverse("conventions:scheme-create")
        )
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            stored = scheme if editing else Scheme.objects.latest("pk")
            assert_stored(stored, form.cleaned_data)


@pytest.fixture
def foreign_convention(world):
    return ConventionFactory(territory=world.other_epci, reference="AUTRE-2026-001")


@fuzzes(forms.SchemeActionForm)
@budget()
@given(st.data())
def test_a_scheme_action_s_form_never_breaks_and_a_refusal_writes_nothing(
    client, world, draft_scheme, foreign_convention, data
):
    from conventions.models import ActionStatus, Horizon, SchemeAction

    scheme = draft_scheme
    communes = organisations(world, world.commune_a, world.commune_b, world.newcomer)
    sent = data.draw(
        form_data(
            {
                "title": text_up_to(250),
                "description": optional(text_up_to(500)),
                "service": optional(st.just(str(world.service.pk))),
                "kind": optional(st.sampled_from(KINDS)),
                "communes": st.lists(communes[0], max_size=3, unique=True),
                "horizon": st.sampled_from(Horizon.values),
                "target_year": year_text(2026, 2032),
                "expected_fte_change": decimal_text(10**4, 2, min_value=-(10**4)),
                "expected_cost_change": decimal_text(10**11, 2, min_value=-(10**11)),
                "status": st.sampled_from(ActionStatus.values),
                "progress_note": optional(text_up_to(500)),
                "conventions": st.lists(
                    st.just(str(world.mad.convention.pk)), max_size=1, unique=True
                ),
            },
            {
                "title": hostile_text,
                "service": hostile_choice(),
                "kind": hostile_choice(),
                "communes": st.lists(communes[1], min_size=1, max_size=2),
                "horizon": hostile_choice(),
                "target_year": st.one_of(st.sampled_from(["2025", "2033", "0"]), hostile_number),
                "expected_fte_change": hostile_number,
                "expected_cost_change": hostile_number,
                "status": hostile_choice(),
                "conventions": st.lists(
                    hostile_choice(foreign_convention.pk), min_size=1, max_size=2
                ),
            },
        ),
        label="sent",
    )
    existing = SchemeAction.objects.get(scheme=scheme)
    editing = data.draw(st.booleans(), label="editing")
    with example_rolled_back():
        instance = SchemeAction.objects.get(pk=existing.pk) if editing else None
        form = forms.SchemeActionForm(
            query_dict(sent), instance=instance, scheme=None if editing else scheme
        )
        valid = check_form(form, sent)
        client.force_login(world.personas.manager)
        url = (
            reverse("conventions:scheme-action-edit", args=[existing.pk])
            if editing
            else reverse("conventions:scheme-action-add", args=[scheme.pk])
        )
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid:
            assert refused
        if not refused:
            stored = existing if editing else SchemeAction.objects.latest("pk")
            assert_stored(stored, form.cleaned_data)
            assert set(stored.communes.all()) <= {
                world.commune_a,
                world.commune_b,
                world.newcomer,
            }


@fuzzes(forms.SchemeActionProgressForm)
@budget()
@given(st.data())
def test_a_transmitted_scheme_s_action_progress_never_breaks_and_a_refusal_writes_nothing(
    client, world, scheme, foreign_convention, data
):
    from conventions.models import ActionStatus, SchemeAction

    sent = data.draw(
        form_data(
            {
                "status": st.sampled_from(ActionStatus.values),
                "progress_note": optional(text_up_to(500)),
                "conventions": st.lists(
                    st.just(str(world.mad.convention.pk)), max_size=1, unique=True
                ),
                # what the councils gave their opinion on: ignored, never stored
                "title": text_up_to(250),
                "expected_cost_change": decimal_text(10**11, 2, min_value=-(10**11)),
            },
            {
                "status": hostile_choice(),
                "progress_note": hostile_text,
                "conventions": st.lists(
                    hostile_choice(foreign_convention.pk), min_size=1, max_size=2
                ),
            },
        ),
        label="sent",
    )
    existing = SchemeAction.objects.get(scheme=scheme)
    with example_rolled_back():
        before = (existing.title, existing.expected_cost_change)
        form = forms.SchemeActionProgressForm(
            query_dict(sent), instance=SchemeAction.objects.get(pk=existing.pk)
        )
        valid = check_form(form, sent)
        client.force_login(world.personas.manager)
        url = reverse("conventions:scheme-action-edit", args=[existing.pk])
        _response, refused = submit(client, url, sent)
        outcome(refused)
        if not valid:
            assert refused
        stored = SchemeAction.objects.get(pk=existing.pk)
        assert (stored.title, stored.expected_cost_change) == before
        if not refused:
            assert_stored(stored, form.cleaned_data)


@fuzzes(forms.SchemeOpinionForm, forms.SchemeSubmitForm, forms.SchemeAdoptForm)
@budget()
@given(st.data())
def test_a_scheme_s_opinion_transmission_and_approval_never_break(client, world, scheme, data):
    from conventions.models import Opinion, SchemeOpinion

    what = data.draw(st.sampled_from(["avis", "transmettre", "approuver"]), label="what")
    if what == "avis":
        form_class, url = forms.SchemeOpinionForm, "conventions:scheme-opinion-add"
        valid_fields = {
            "commune": st.sampled_from([str(world.commune_b.pk), str(world.newcomer.pk)]),
            "date": date_text(date(2026, 10, 1), TODAY),
            "deliberation_number": optional(text_up_to(40)),
            "opinion": st.sampled_from(Opinion.values),
        }
        hostile_fields = {
            "commune": hostile_choice(world.commune_a.pk, world.stranger.pk, world.epci.pk),
            "date": hostile_date,
            "deliberation_number": hostile_text,
            "opinion": hostile_choice(),
        }
        prefix = ""
    else:
        form_class = forms.SchemeSubmitForm if what == "transmettre" else forms.SchemeAdoptForm
        url = f"conventions:scheme-{'submit' if what == 'transmettre' else 'adopt'}"
        prefix = "transmission-" if what == "transmettre" else "approbation-"
        valid_fields = {f"{prefix}on": date_text(date(2026, 10, 1), TODAY)}
        hostile_fields = {f"{prefix}on": hostile_date}
        if what == "approuver":
            valid_fields[f"{prefix}number"] = text_up_to(40)
            hostile_fields[f"{prefix}number"] = hostile_text
    sent = data.draw(form_data(valid_fields, hostile_fields), label="sent")
    with example_rolled_back():
        if what == "avis":
            form = form_class(query_dict(sent), scheme=scheme)
        else:
            form = form_class(query_dict(sent), prefix=prefix.rstrip("-"))
        valid = check_form(form, sent)
        client.force_login(world.personas.manager)
        _response, refused = submit(client, reverse(url, args=[scheme.pk]), sent)
        outcome(refused)
        if what == "avis" and not valid:
            assert refused
        if what == "avis" and not refused:
            assert_stored(SchemeOpinion.objects.latest("pk"), form.cleaned_data)
