"""Fuzzing of the sign-in and password forms and of every address's parameters; and the guard
that every form of the project has its fuzz test (see tests/fuzz.py)."""

import re
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib.auth.forms import PasswordChangeForm
from django.db.models import CheckConstraint, UniqueConstraint
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from hypothesis import event, example, given
from hypothesis import strategies as st

from mutualisation.forms import AdminLoginForm, LoginForm
from tests.conftest import PASSWORD
from tests.costing.conftest import cost_base
from tests.factories import ServiceFactory, TermsFactory
from tests.fuzz import (
    FUZZED,
    HOSTILE_IDS,
    PROJECT_APPS,
    budget,
    check_form,
    example_rolled_back,
    form_data,
    fuzzes,
    hostile_text,
    project_forms,
    query_dict,
    submit,
)

pytestmark = pytest.mark.django_db


def outcome(refused):
    event("refusé" if refused else "accepté")


@fuzzes(LoginForm, AdminLoginForm)
@budget()
@given(
    data=form_data(
        {
            "username": st.sampled_from(
                ["gestionnaire", "lecteur.a", "admin", "GESTIONNAIRE", "personne"]
            ),
            "password": st.sampled_from([PASSWORD, PASSWORD.upper(), "mauvais"]),
        }
    ),
    next_url=st.sampled_from(
        [
            "",
            "/couts/",
            "https://exemple.invalid/",
            "//exemple.invalid",
            "/\\exemple.invalid",
            "javascript:alert(1)",
            "/%00",
            "/conventions/?q=<script>",
        ]
    ),
    page=st.sampled_from(["login", "login", "admin:login"]),
)
# Before: a 500 on PostgreSQL (django-axes records the username in 255 characters).
@example(data={"username": "A" * 2001, "password": PASSWORD}, next_url="", page="login")
@example(data={"username": "A" * 256, "password": PASSWORD}, next_url="", page="admin:login")
def test_signing_in_never_breaks_nor_sends_elsewhere(client, personas, data, next_url, page):
    form_class = {"login": LoginForm, "admin:login": AdminLoginForm}[page]
    with example_rolled_back():
        client.logout()
        request = RequestFactory().post(reverse(page))
        check_form(form_class(request=request, data=query_dict(data)), data)
        url = reverse(page) + (f"?next={quote(next_url)}" if next_url else "")
        response, refused = submit(client, url, data)
        outcome(refused)
        if not refused:
            assert "_auth_user_id" in client.session
            assert response["Location"].startswith("/")
            assert not response["Location"].startswith(("//", "/\\"))
        else:
            assert "_auth_user_id" not in client.session


STRONG = "Un mot de passe bien long 2026 !"


@fuzzes(PasswordChangeForm)
@budget()
@given(
    data=form_data(
        {
            "old_password": st.sampled_from([PASSWORD, PASSWORD, "mauvais"]),
            "new_password1": st.sampled_from([STRONG, "court", "lecteur.a2026", "123456789012"]),
            "new_password2": st.sampled_from([STRONG, STRONG, "autre chose encore"]),
        },
        {
            "old_password": hostile_text,
            "new_password1": hostile_text,
            "new_password2": hostile_text,
        },
    )
)
def test_changing_ones_password_never_breaks_and_a_refusal_writes_nothing(client, personas, data):
    with example_rolled_back():
        user = type(personas.reader_a).objects.get(pk=personas.reader_a.pk)
        form = PasswordChangeForm(user, query_dict(data))
        valid = check_form(form, data)
        client.force_login(user)
        _response, refused = submit(client, reverse("password_change"), data)
        outcome(refused)
        assert refused != valid
        user.refresh_from_db()
        assert user.check_password(PASSWORD) == refused
        if not refused:
            assert user.check_password(form.cleaned_data["new_password1"])


# --- every address, with hostile values in its path ----------------------------------------------


def project_routes(patterns=None, prefix=""):
    """The route of every address of the project's screens (``couts/base/<int:pk>/``…)."""
    routes = []
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if pattern.app_name in PROJECT_APPS:
                routes += project_routes(pattern.url_patterns, prefix + route)
        elif isinstance(pattern, URLPattern) and "<" in route:
            routes.append(prefix + route)
    return routes


PATH_VALUES = {
    "int": st.one_of(
        st.sampled_from(["1", "2", "3", "0", "99999999999999999999", "00001"]),
        st.integers(0, 10**30).map(str),
    ),
    "year": st.sampled_from(["2026", "2025", "1900", "0000", "9999", "2100"]),
    "str": st.one_of(
        st.sampled_from(
            [
                "CONV-2026-001",
                "conv-2026-001",
                "sign",
                "avis",
                "deliberation",
                "titre",
                "lignes",
                "csv",
                "xlsx",
                *HOSTILE_IDS,
            ]
        ),  # fmt: skip
        hostile_text.filter(lambda value: value.strip(" /.") != ""),
    ),
}


@st.composite
def hostile_path(draw):
    route = draw(st.sampled_from(sorted(project_routes())))

    def fill(match):
        converter = match.group(1) or "str"
        return quote(draw(PATH_VALUES.get(converter, PATH_VALUES["str"])), safe="")

    return "/" + re.sub(r"<(?:(\w+):)?\w+>", fill, route)


@pytest.fixture
def filled(territory, personas):
    """A convention and a cost base, so that some hostile addresses name real things."""
    service = ServiceFactory(provider=territory.epci)
    return cost_base(service), TermsFactory(convention__reference="CONV-2026-001").convention


@budget(1.5)
@given(
    path=hostile_path(),
    method=st.sampled_from(["get", "post"]),
    persona=st.sampled_from(["admin", "finance", "manager", "reader_a", "outsider"]),
)
@example(path="/conventions/A%00B/", method="get", persona="admin")  # a 500 on PostgreSQL
def test_every_address_reads_hostile_path_values_without_breaking(
    client, personas, filled, path, method, persona
):
    with example_rolled_back():
        client.force_login(getattr(personas, persona))
        response, _refused = submit(client, path, {}, method=method)
        event(f"{method} {response.status_code}")


# --- what the fuzz tests cover ---------------------------------------------------------------------


def test_every_form_of_the_project_has_its_fuzz_test():
    """A new form, formset or filter set fails here until a fuzz test declares it (@fuzzes)."""
    import tests.conventions.test_fuzz_forms  # noqa: F401 (their @fuzzes fill FUZZED)
    import tests.costing.test_fuzz_forms  # noqa: F401
    from conventions import forms as convention_forms
    from conventions.filters import ConventionFilter
    from costing import forms as costing_forms

    found = project_forms()
    # The enumeration itself finds forms of each kind and origin.
    assert {
        LoginForm,
        PasswordChangeForm,
        ConventionFilter,
        convention_forms.ConventionForm,
        convention_forms.PartyFormSet,
        costing_forms.CostLineFormSet,
        costing_forms.UsageGridForm,
    } <= found
    missing = sorted(f"{form.__module__}.{form.__qualname__}" for form in found - set(FUZZED))
    assert missing == []


def test_every_constraint_message_can_be_shown():
    """Django formats a constraint's message with % (its name): a bare « % » in the text made
    the form raise instead of showing it (a 500 on an agent's 0 % share)."""
    for model in apps.get_models():
        for constraint in model._meta.constraints:
            if isinstance(constraint, CheckConstraint | UniqueConstraint):
                assert constraint.get_violation_error_message()


@pytest.mark.parametrize(
    "address",
    ["/conventions/CONV%002026/", "/couts/simulation/A%00B/", "/conventions/?q=A%00B",
     "/couts/remboursements/2026/?siren=%00"],
)  # fmt: skip
def test_an_address_with_a_nul_character_is_an_invalid_request_in_french(client, personas, address):
    """Before: a 500 on PostgreSQL, which refuses the character even in a lookup."""
    client.force_login(personas.admin)
    response = client.get(address)
    assert response.status_code == 400
    assert "Requête invalide" in response.content.decode()


def test_every_decimal_of_the_project_forms_refuses_nan_as_soon_as_it_reads_it():
    """Django's decimal field reads « sNaN » and compares it before refusing it: a 500 on every
    edit page with a decimal. The project's forms use mutualisation.forms.DecimalField."""
    from types import SimpleNamespace

    from django import forms as django_forms
    from django_filters import FilterSet

    from costing.forms import UsageGridForm
    from mutualisation.forms import DecimalField

    decimals = []
    for form_class in project_forms():
        if issubclass(form_class, FilterSet):
            continue  # a filter only validates (it never compares with an initial value)
        form = getattr(form_class, "form", form_class)
        decimals += [
            (form.__name__, name, type(field))
            for name, field in form.base_fields.items()
            if isinstance(field, django_forms.DecimalField)
        ]
    grid = UsageGridForm(beneficiaries=[SimpleNamespace(pk=1, name="A")], year=2026)
    decimals += [("UsageGridForm", name, type(field)) for name, field in grid.fields.items()]
    assert len(decimals) > 10
    assert [d for d in decimals if not issubclass(d[2], DecimalField)] == []
