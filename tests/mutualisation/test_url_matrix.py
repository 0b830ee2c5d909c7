"""The URL × persona matrix: every URL pattern of the project, the admin's included, requested by
each persona on real objects of communes A and B, answers the status the table below declares,
never a 500, and a refused request writes nothing.

The table says what the product should answer (mutualisation/rules.py, conventions/rules.py,
costing/rules.py, the views): 302 to the login page for an anonymous visitor, 404 for an object
of a convention the persona may not see (its existence is not revealed), 403 for an action the
persona's role does not allow, 405 for a POST-only address requested by GET. A URL pattern
without a row fails ``test_every_url_pattern_has_a_row``.
"""

import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.mutualisation.url_world import PERSONAS, YEAR

# Expected answers: an HTTP status, or one of these redirects.
LOGIN = "login"  # 302 to the login page, with ?next=
ADMIN_LOGIN = "admin-login"  # 302 to the admin's login page
# A form's empty POST gets the GET's answer: refused alike, or the form again with its errors.
AS_GET = "as-get"


@dataclass(frozen=True)
class Row:
    """How to fill a pattern from the world (a dict of kwargs, a list of args, or for an unnamed
    pattern the path itself), and the answer per persona, in the order of PERSONAS, to a GET and
    to an empty POST (None: a page that only reads, not posted)."""

    url: Callable
    get: tuple
    post: tuple | str | None = None
    query: str = ""


# fmt: off
#                      anonymous  outsider  reader_a  reader_b  manager  finance  admin
EVERY_ROLE =          (LOGIN,     403,      200,      200,      200,     200,     200)
SEES_A =              (LOGIN,     404,      200,      404,      200,     200,     200)
COST_SEES_A =         (LOGIN,     403,      200,      404,      200,     200,     200)
MANAGER_ON_A =        (LOGIN,     404,      403,      404,      200,     403,     200)
# A territory-wide record every reader of a member commune sees, its managers change.
SCHEME_MANAGER =      (LOGIN,     404,      403,      403,      200,     403,     200)
SCHEME_LOCKED =       (LOGIN,     404,      403,      403,      302,     403,     302)
FINANCE =             (LOGIN,     403,      403,      403,      403,     200,     200)
USAGE =               (LOGIN,     403,      403,      403,      200,     200,     200)
ANY_ACCOUNT =         (LOGIN,     200,      200,      200,      200,     200,     200)
POST_ONLY =           (LOGIN,     405,      405,      405,      405,     405,     405)
# The REST API (/api/v1/): 401 without a token or session; what the persona may not see is a
# 404; its read-only resources refuse a POST (405).
API_EVERY =           (401,       200,      200,      200,      200,     200,     200)
API_SEES_A =          (401,       404,      200,      404,      200,     200,     200)
API_SEES_BOTH =       (401,       404,      200,      200,      200,     200,     200)
API_READ_ONLY =       (401,       405,      405,      405,      405,     405,     405)
PUBLIC =              (200,) * 7
PUBLIC_READ_ONLY =    (405,) * 7


def admin_only(answer):
    """The admin site is the administrator's (the only staff account); every other persona is
    sent to its login page."""
    return (ADMIN_LOGIN,) * 6 + (answer,)


STAFF_ONLY = admin_only(200)

ROWS = {
    "home":                              Row(lambda w: {}, EVERY_ROLE),
    "login":                             Row(lambda w: {}, (200, 302, 302, 302, 302, 302, 302),
                                             (200, 302, 302, 302, 302, 302, 302)),
    "logout":                            Row(lambda w: {}, (405,) * 7, (302,) * 7),
    "password_change":                   Row(lambda w: {}, ANY_ACCOUNT, ANY_ACCOUNT),
    "password_change_done":              Row(lambda w: {}, ANY_ACCOUNT, (LOGIN, *(405,) * 6)),
    "accessibility":                     Row(lambda w: {}, (200,) * 7, (405,) * 7),
    # --- conventions ---------------------------------------------------------------------------
    "conventions:list":                  Row(lambda w: {}, EVERY_ROLE),
    # The list filter's search: organisations the persona may see (test_organisation_search.py).
    "conventions:organisations":         Row(lambda w: {}, EVERY_ROLE, query="q=Commune"),
    "conventions:create":                Row(lambda w: {}, (LOGIN, 403, 403, 403, 200, 403, 200),
                                             AS_GET),
    # The schéma de mutualisation: the staff of its territory and the readers of its member
    # communes read it (A's reader does not see an action concerning A only: 404 for B's
    # reader); its managers change it. Its approval is refused: B's opinion is awaited.
    "conventions:schemes":               Row(lambda w: {}, EVERY_ROLE),
    "conventions:scheme-create":         Row(lambda w: {}, (LOGIN, 403, 403, 403, 200, 403, 200),
                                             AS_GET),
    "conventions:scheme":                Row(lambda w: {"pk": w.scheme.pk},
                                             (LOGIN, 404, 200, 200, 200, 200, 200)),
    # Transmitted to the communes, its text no longer changes: back to it, saying so.
    "conventions:scheme-edit":           Row(lambda w: {"pk": w.scheme.pk}, SCHEME_LOCKED,
                                             AS_GET),
    "conventions:scheme-action-add":     Row(lambda w: {"pk": w.scheme.pk}, SCHEME_LOCKED,
                                             AS_GET),
    "conventions:scheme-action-edit":    Row(lambda w: {"pk": w.scheme_action.pk}, MANAGER_ON_A,
                                             AS_GET),
    "conventions:scheme-action-delete":  Row(lambda w: {"pk": w.scheme_action.pk}, POST_ONLY,
                                             (LOGIN, 404, 403, 404, 302, 403, 302)),
    "conventions:scheme-opinion-add":    Row(lambda w: {"pk": w.scheme.pk}, SCHEME_MANAGER,
                                             AS_GET),
    "conventions:scheme-submit":         Row(lambda w: {"pk": w.scheme.pk}, POST_ONLY,
                                             (LOGIN, 404, 403, 403, 409, 403, 409)),
    "conventions:scheme-adopt":          Row(lambda w: {"pk": w.scheme.pk}, POST_ONLY,
                                             (LOGIN, 404, 403, 403, 409, 403, 409)),
    "conventions:detail":                Row(lambda w: {"reference": w.convention_a.reference},
                                             SEES_A),
    "conventions:edit":                  Row(lambda w: {"reference": w.draft.reference},
                                             MANAGER_ON_A, AS_GET),
    "conventions:pdf":                   Row(lambda w: {"reference": w.convention_a.reference},
                                             SEES_A),
    "conventions:transition":            Row(lambda w: {"reference": w.draft.reference,
                                                        "name": "submit"},
                                             POST_ONLY, (LOGIN, 404, 403, 404, 302, 403, 302)),
    "conventions:add-related":           Row(lambda w: {"reference": w.draft.reference,
                                                        "kind": "fiche-impact"},
                                             MANAGER_ON_A, AS_GET),
    "conventions:record-edit":           Row(lambda w: {"reference": w.draft.reference,
                                                        "kind": "deliberation",
                                                        "pk": w.deliberation.pk},
                                             MANAGER_ON_A, AS_GET),
    "conventions:record-delete":         Row(lambda w: {"reference": w.draft.reference,
                                                        "kind": "avis", "pk": w.opinion.pk},
                                             POST_ONLY, (LOGIN, 404, 403, 404, 302, 403, 302)),
    "conventions:deliberation-add":      Row(lambda w: {"reference": w.draft.reference},
                                             MANAGER_ON_A, AS_GET),
    "conventions:deliberation-publicity": Row(lambda w: {"reference": w.draft.reference,
                                                         "pk": w.deliberation.pk},
                                              MANAGER_ON_A, AS_GET),
    "conventions:publicity":             Row(lambda w: {"reference": w.draft.reference},
                                             MANAGER_ON_A, AS_GET),
    "conventions:amendment-create":      Row(lambda w: {"reference": w.convention_a.reference},
                                             MANAGER_ON_A, AS_GET),
    "conventions:amendment-deliberation": Row(lambda w: {"reference": w.convention_a.reference,
                                                         "number": w.amendment.number},
                                              MANAGER_ON_A, AS_GET),
    "conventions:amendment-forecasts":   Row(lambda w: {"reference": w.convention_a.reference,
                                                        "number": w.amendment.number},
                                             MANAGER_ON_A, AS_GET),
    "conventions:amendment-opinion":     Row(lambda w: {"reference": w.convention_a.reference,
                                                        "number": w.amendment.number},
                                             MANAGER_ON_A, AS_GET),
    "conventions:amendment-pdf":         Row(lambda w: {"reference": w.convention_a.reference,
                                                        "number": w.amendment.number},
                                             SEES_A),
    "conventions:amendment-sign":        Row(lambda w: {"reference": w.convention_a.reference,
                                                        "number": w.amendment.number},
                                             POST_ONLY, (LOGIN, 404, 403, 404, 409, 403, 409)),
    "conventions:terminate":             Row(lambda w: {"reference": w.convention_a.reference},
                                             MANAGER_ON_A, AS_GET),
    "conventions:attachment-download":   Row(lambda w: {"reference": w.convention_a.reference,
                                                        "pk": w.attachment.pk},
                                             SEES_A),
    # Territory-wide tables (issue 14): every role of the territory (a commune reader: its own
    # commune's row, its own conventions' agents); the outsider has no territory.
    "conventions:adhesions":             Row(lambda w: {"year": YEAR}, EVERY_ROLE),
    "conventions:adhesions-export":      Row(lambda w: {"year": YEAR, "fmt": "xlsx"}, EVERY_ROLE),
    "conventions:staff":                 Row(lambda w: {"year": YEAR}, EVERY_ROLE),
    "conventions:staff-export":          Row(lambda w: {"year": YEAR, "fmt": "csv"}, EVERY_ROLE),
    # --- costing -------------------------------------------------------------------------------
    "costing:index":                     Row(lambda w: {}, (LOGIN, 403, 302, 302, 302, 302, 302)),
    "costing:reimbursements":            Row(lambda w: {"year": YEAR}, EVERY_ROLE),
    # « Recalculer »: finance, the convention managers and the administrator.
    "costing:reimbursements-recompute":  Row(lambda w: {"year": YEAR}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 302, 302, 302)),
    "costing:cost-bases":                Row(lambda w: {"year": YEAR}, EVERY_ROLE),
    "costing:cost-base-create":          Row(lambda w: {}, FINANCE, AS_GET),
    "costing:cost-base":                 Row(lambda w: {"pk": w.base_a_only.pk}, COST_SEES_A),
    "costing:cost-base-edit":            Row(lambda w: {"pk": w.base.pk}, FINANCE, AS_GET),
    "costing:unit-cost-compute":         Row(lambda w: {"pk": w.base.pk}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 302, 302)),
    "costing:unit-cost-notify":          Row(lambda w: {"pk": w.base.pk}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 302, 302)),
    "costing:unit-cost-correct":         Row(lambda w: {"pk": w.base.pk}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 200, 200)),
    "costing:unit-cost-provisional":     Row(lambda w: {"pk": w.base.pk}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 302, 302)),
    # « Recours »: the year's conventions of the persona's own territories.
    "costing:usage-list":                Row(lambda w: {"year": YEAR}, USAGE),
    "costing:usage-import":              Row(lambda w: {}, USAGE, AS_GET),
    # A dropped file is its author's: another person with the right gets 404.
    "costing:usage-import-detail":       Row(lambda w: {"pk": w.usage_import.pk},
                                             (LOGIN, 403, 403, 403, 404, 200, 404)),
    "costing:usage-import-confirm":      Row(lambda w: {"pk": w.usage_import.pk}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 404, 302, 404)),
    # « Télécharger le modèle »: the rows of the persona's own territories only.
    "costing:usage-template":            Row(lambda w: {"year": YEAR, "month": 3, "fmt": "csv"},
                                             USAGE),
    "costing:usage-edit":                Row(lambda w: {"pk": w.usage.pk}, USAGE, AS_GET),
    "costing:usage-state":               Row(lambda w: {"reference": w.convention_a.reference,
                                                        "year": YEAR}, USAGE, AS_GET),
    "costing:usage-grid":                Row(lambda w: {"reference": w.convention_a.reference,
                                                        "service": w.service.code, "year": YEAR},
                                             USAGE, AS_GET),
    "costing:simulation":                Row(lambda w: {"reference": w.convention_a.reference},
                                             USAGE),
    "costing:statements":                Row(lambda w: {"year": YEAR}, EVERY_ROLE),
    "costing:statements-prepare":        Row(lambda w: {"year": YEAR}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 302, 302)),
    # An empty POST names no action: refused as an unknown action.
    "costing:batch-start":               Row(lambda w: {"year": YEAR}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 403, 403)),
    "costing:statement":                 Row(lambda w: {"pk": w.correction.pk}, COST_SEES_A),
    "costing:statement-pdf":             Row(lambda w: {"pk": w.issued.pk}, COST_SEES_A),
    "costing:statement-issue":           Row(lambda w: {"pk": w.correction.pk}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 302, 302)),
    "costing:statement-correct":         Row(lambda w: {"pk": w.issued.pk}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 302, 302)),
    # The debtor commune remarks on and approves its draft; the Métropole's staff do not.
    "costing:statement-remark":          Row(lambda w: {"pk": w.correction.pk}, POST_ONLY,
                                             (LOGIN, 404, 302, 404, 403, 403, 403)),
    "costing:statement-approve":         Row(lambda w: {"pk": w.correction.pk}, POST_ONLY,
                                             (LOGIN, 404, 302, 404, 403, 403, 403)),
    # Finance of the statement's territory answers a remark (an empty POST: the form's errors,
    # back to the statement).
    "costing:statement-remark-answer":   Row(lambda w: {"pk": w.remark.pk}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 302, 302)),
    "costing:instalments":               Row(lambda w: {"year": YEAR}, EVERY_ROLE),
    "costing:instalments-call":          Row(lambda w: {"year": YEAR}, POST_ONLY,
                                             (LOGIN, 403, 403, 403, 403, 302, 302)),
    "costing:instalment-action":         Row(lambda w: {"pk": w.instalment.pk, "action": "titre"},
                                             POST_ONLY, (LOGIN, 403, 403, 403, 403, 302, 302)),
    "costing:batch":                     Row(lambda w: {"pk": w.job.pk}, FINANCE),
    "costing:batch-download":            Row(lambda w: {"pk": w.job.pk}, FINANCE),
    "costing:export":                    Row(lambda w: {"year": YEAR, "kind": "titres",
                                                        "fmt": "csv"}, FINANCE),
    "costing:dashboard":                 Row(lambda w: {"year": YEAR}, FINANCE),
    # The annual report to the council: every role; a commune reader's shows their commune's part.
    "costing:annual-report":             Row(lambda w: {"year": YEAR}, EVERY_ROLE),
    "costing:annual-report-pdf":         Row(lambda w: {"year": YEAR}, EVERY_ROLE),
    "costing:commune-summary":           Row(lambda w: {"year": YEAR,
                                                        "siren": w.commune_a.siren},
                                             COST_SEES_A),
    # --- the REST API --------------------------------------------------------------------------
    "api:root":                          Row(lambda w: {}, API_EVERY, API_READ_ONLY),
    # The schema and its documentation describe the API, not its data: public.
    "api:schema":                        Row(lambda w: {}, PUBLIC, PUBLIC_READ_ONLY),
    "api:docs":                          Row(lambda w: {}, PUBLIC, PUBLIC_READ_ONLY),
    "api:organisation-list":             Row(lambda w: {}, API_EVERY, API_READ_ONLY),
    "api:organisation-detail":           Row(lambda w: {"pk": w.commune_a.pk}, API_SEES_A,
                                             API_READ_ONLY),
    "api:population-list":               Row(lambda w: {}, API_EVERY, API_READ_ONLY),
    "api:population-detail":             Row(lambda w: {"pk": w.population.pk}, API_SEES_A,
                                             API_READ_ONLY),
    "api:unittype-list":                 Row(lambda w: {}, API_EVERY, API_READ_ONLY),
    "api:unittype-detail":               Row(lambda w: {"pk": w.service.unit_type.pk},
                                             API_SEES_BOTH, API_READ_ONLY),
    "api:service-list":                  Row(lambda w: {}, API_EVERY, API_READ_ONLY),
    "api:service-detail":                Row(lambda w: {"pk": w.service.pk}, API_SEES_BOTH,
                                             API_READ_ONLY),
    # A new draft: the managers (a form's empty POST is not JSON: 415).
    "api:convention-list":               Row(lambda w: {}, API_EVERY,
                                             (401, 403, 403, 403, 415, 403, 415)),
    "api:convention-detail":             Row(lambda w: {"reference": w.convention_a.reference},
                                             API_SEES_A, API_READ_ONLY),
    "api:convention-pdf":                Row(lambda w: {"reference": w.convention_a.reference},
                                             API_SEES_A, API_READ_ONLY),
    # The acts system records the deliberations and their transmission: the managers.
    "api:convention-deliberations":      Row(lambda w: {"reference": w.draft.reference},
                                             API_READ_ONLY, (401, 404, 403, 404, 415, 403, 415)),
    "api:convention-deliberation-publicity": Row(lambda w: {"reference": w.draft.reference,
                                                            "deliberation": w.deliberation.pk},
                                                 API_READ_ONLY,
                                                 (401, 404, 403, 404, 415, 403, 415)),
    "api:convention-publicity":          Row(lambda w: {"reference": w.draft.reference},
                                             API_READ_ONLY, (401, 404, 403, 404, 415, 403, 415)),
    # The legal transitions: the managers of the convention's territory, through the gates
    # (tests/conventions/test_api.py); the API reads JSON, so a form's empty POST is a 415.
    "api:convention-transition":         Row(lambda w: {"reference": w.draft.reference,
                                                        "name": "submit"},
                                             API_READ_ONLY, (401, 404, 403, 404, 415, 403, 415)),
    # The conventions in force, public acts: the open-data portal reads them without a token.
    "api:open-data-conventions":         Row(lambda w: {}, PUBLIC, PUBLIC_READ_ONLY),
    # The CSV: one EPCI at a time (``territory`` required, 400 without); the EPCIs, listed.
    "api:open-data-conventions-csv":     Row(lambda w: reverse("api:open-data-conventions-csv")
                                             + f"?territory={w.epci.siren}",
                                             PUBLIC, PUBLIC_READ_ONLY),
    "api:open-data-territories":         Row(lambda w: {}, PUBLIC, PUBLIC_READ_ONLY),
    # A new cost base: finance (a form's empty POST is not JSON: 415).
    "api:costbase-list":                 Row(lambda w: {}, API_EVERY,
                                             (401, 403, 403, 403, 403, 415, 415)),
    # Finance of the service's territory; the unit cost of the world is notified: refused.
    "api:costbase-compute-unit-cost":    Row(lambda w: {"pk": w.base.pk}, API_READ_ONLY,
                                             (401, 404, 403, 403, 403, 409, 409)),
    "api:costbase-notify-unit-cost":     Row(lambda w: {"pk": w.base.pk}, API_READ_ONLY,
                                             (401, 404, 403, 403, 403, 415, 415)),
    "api:costbase-detail":               Row(lambda w: {"pk": w.base_a_only.pk}, API_SEES_A,
                                             API_READ_ONLY),
    "api:unitcost-list":                 Row(lambda w: {}, API_EVERY, API_READ_ONLY),
    "api:unitcost-detail":               Row(lambda w: {"pk": w.unit_cost.pk}, API_SEES_BOTH,
                                             API_READ_ONLY),
    "api:usagerecord-list":              Row(lambda w: {}, API_EVERY, API_READ_ONLY),
    # Usage sent in bulk by counting tools: those who record usage (a form's empty POST is
    # not JSON: 415; tests/costing/test_api_usage_bulk.py).
    "api:usagerecord-bulk":              Row(lambda w: {}, API_READ_ONLY,
                                             (401, 403, 403, 403, 415, 415, 415)),
    "api:usagerecord-detail":            Row(lambda w: {"pk": w.usage.pk}, API_SEES_A,
                                             API_READ_ONLY),
    "api:statement-list":                Row(lambda w: {}, API_EVERY, API_READ_ONLY),
    "api:statement-detail":              Row(lambda w: {"pk": w.correction.pk}, API_SEES_A,
                                             API_READ_ONLY),
    "api:statement-pdf":                 Row(lambda w: {"pk": w.issued.pk}, API_SEES_A,
                                             API_READ_ONLY),
    # Finance of the convention's territory; the draft has a remark not answered: refused.
    "api:statement-issue":               Row(lambda w: {"pk": w.correction.pk}, API_READ_ONLY,
                                             (401, 404, 403, 404, 403, 409, 409)),
    "api:export":                        Row(lambda w: {"year": YEAR, "kind": "titres",
                                                        "fmt": "csv"},
                                             (401, 403, 403, 403, 403, 200, 200), API_READ_ONLY),
    "api:reimbursements":                Row(lambda w: {"year": YEAR},
                                             (401, 403, 200, 200, 200, 200, 200), API_READ_ONLY),
    # --- the admin site: staff only (the administrator); a non-staff account is sent to its
    # login page -----------------------------------------------------------------------------
    "admin:index":                       Row(lambda w: {}, STAFF_ONLY),
    # The admin's login page: a signed-in account without staff status is told so, on it.
    "admin:login":                       Row(lambda w: {}, (200, 200, 200, 200, 200, 200, 302)),
    # A GET does not log out; a non-staff account is sent to the admin's index (then login).
    "admin:logout":                      Row(lambda w: {}, (302, 302, 302, 302, 302, 302, 405),
                                             (302, 302, 302, 302, 302, 302, 302)),
    "admin:password_change":             Row(lambda w: {}, STAFF_ONLY),
    "admin:password_change_done":        Row(lambda w: {}, STAFF_ONLY),
    "admin:autocomplete":                Row(lambda w: {}, STAFF_ONLY,
                                             query="app_label=mutualisation&model_name=membership"
                                                   "&field_name=organisation&term=Commune"),
    "admin:jsi18n":                      Row(lambda w: {}, STAFF_ONLY),
    "admin:view_on_site":                Row(lambda w: [ContentType.objects.get_for_model(
                                                 w.convention_a).pk, w.convention_a.pk],
                                             admin_only(302)),
    "admin:app_list":                    Row(lambda w: {"app_label": "costing"}, STAFF_ONLY),
    "admin/(?P<url>.*)$":                Row(lambda w: "/admin/inexistant/", admin_only(404)),
}
# fmt: on


@dataclass(frozen=True)
class AdminModel:
    """A registered model: the object its pages open, the administrator's answer on its add and
    delete pages (403: the application produces or freezes these records), and whether
    django-simple-history adds its own page of a past version."""

    obj: Callable
    add: int = 200
    delete: int = 200
    simple_history: bool = True


ADMIN_MODELS = {
    "auth.group": AdminModel(lambda w: w.group, simple_history=False),
    # API tokens: one per user, created and revoked by the administrator (docs/api.md).
    "authtoken.tokenproxy": AdminModel(lambda w: w.token, simple_history=False),
    "auth.user": AdminModel(lambda w: w.users.reader_a, simple_history=False),
    "axes.accessattempt": AdminModel(lambda w: w.attempt, add=403, simple_history=False),
    "axes.accesslog": AdminModel(lambda w: w.access_log, add=403, simple_history=False),
    "axes.accessfailurelog": AdminModel(lambda w: w.failure, add=403, simple_history=False),
    "mutualisation.organisation": AdminModel(lambda w: w.commune_a),
    "mutualisation.epcimembership": AdminModel(lambda w: w.epci_membership),
    "mutualisation.populationrecord": AdminModel(lambda w: w.population),
    "mutualisation.unittype": AdminModel(lambda w: w.service.unit_type),
    "mutualisation.unitweight": AdminModel(lambda w: w.weight),
    "mutualisation.service": AdminModel(lambda w: w.service),
    "mutualisation.membership": AdminModel(lambda w: w.users.reader_a.memberships.get()),
    # The download log is read only: recorded by the application, purged by its command.
    "mutualisation.documentaccess": AdminModel(
        lambda w: w.access, add=403, delete=403, simple_history=False
    ),
    "conventions.convention": AdminModel(lambda w: w.convention_a),
    "conventions.terms": AdminModel(lambda w: w.terms),
    "conventions.usageforecast": AdminModel(lambda w: w.forecast),
    "conventions.deliberation": AdminModel(lambda w: w.deliberation),
    "conventions.staffbodyopinion": AdminModel(lambda w: w.opinion),
    "conventions.amendment": AdminModel(lambda w: w.amendment),
    "conventions.impactsheet": AdminModel(lambda w: w.impact_sheet),
    "conventions.agentassignment": AdminModel(lambda w: w.agent),
    "conventions.attachment": AdminModel(lambda w: w.attachment, simple_history=False),
    "conventions.termination": AdminModel(lambda w: w.termination),
    "conventions.scheme": AdminModel(lambda w: w.scheme),
    "conventions.schemeaction": AdminModel(lambda w: w.scheme_action),
    "conventions.referencecounter": AdminModel(lambda w: w.reference_counter, simple_history=False),
    "costing.costbase": AdminModel(lambda w: w.base),
    # A notified unit cost is frozen: corrected by a new version, never deleted.
    "costing.unitcost": AdminModel(lambda w: w.unit_cost, delete=403),
    "costing.usagerecord": AdminModel(lambda w: w.usage, add=403, delete=403),
    "costing.instalment": AdminModel(lambda w: w.instalment, add=403, delete=403),
    "costing.accountmapping": AdminModel(lambda w: w.account_mapping),
    # An issued statement is frozen (database triggers too).
    "costing.statement": AdminModel(lambda w: w.issued, add=403, delete=403, simple_history=False),
    # A remark is the commune's, answered by finance on the statement's page: read here.
    # A remark is written on the statement's page; deleting it would lift the block on issuing.
    "costing.statementremark": AdminModel(lambda w: w.remark, add=403, delete=403),
    "costing.batchjob": AdminModel(lambda w: w.job, add=403, simple_history=False),
    # A dropped usage file is read only: its records cite it.
    "costing.usageimport": AdminModel(
        lambda w: w.usage_import, add=403, delete=403, simple_history=False
    ),
}


def _admin_rows(label, model):
    app, name = label.split(".")
    prefix = f"admin:{app}_{name}"

    def pk(w):
        return model.obj(w).pk

    rows = {
        f"{prefix}_changelist": Row(lambda w: {}, STAFF_ONLY),
        f"{prefix}_add": Row(lambda w: {}, admin_only(model.add)),
        f"{prefix}_history": Row(lambda w: {"object_id": pk(w)}, STAFF_ONLY),
        f"{prefix}_delete": Row(lambda w: {"object_id": pk(w)}, admin_only(model.delete)),
        f"{prefix}_change": Row(lambda w: {"object_id": pk(w)}, STAFF_ONLY),
        # The bare object address redirects to its change page.
        f"admin/{app}/{name}/<path:object_id>/": Row(
            lambda w: f"/admin/{app}/{name}/{pk(w)}/", admin_only(302)
        ),
    }
    if model.simple_history:
        rows[f"{prefix}_simple_history"] = Row(
            lambda w: [pk(w), model.obj(w).history.earliest("history_date").history_id],
            STAFF_ONLY,
        )
    if label == "auth.user":
        rows["admin:auth_user_password_change"] = Row(lambda w: {"id": pk(w)}, STAFF_ONLY)
    return rows


for _label, _model in ADMIN_MODELS.items():
    ROWS.update(_admin_rows(_label, _model))


def url_patterns(patterns=None, prefix="", namespace=None):
    """(stable name, route) of every URL pattern: ``namespace:name``, or the full route of an
    unnamed pattern."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace
            if namespace and inner:
                inner = f"{namespace}:{inner}"
            yield from url_patterns(pattern.url_patterns, route, inner or namespace)
        else:
            assert isinstance(pattern, URLPattern)
            if pattern.name:
                yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), route
            else:
                yield route, route


def test_every_url_pattern_has_a_row():
    patterns = dict(url_patterns())
    missing = sorted(set(patterns) - set(ROWS))
    assert not missing, "Ces adresses n'ont pas de ligne dans ROWS (test_url_matrix.py) :\n" + (
        "\n".join(f"  {name}  ({patterns[name]})" for name in missing)
    )
    stale = sorted(set(ROWS) - set(patterns))
    assert not stale, "Ces lignes de ROWS ne correspondent à aucune adresse : " + ", ".join(stale)


def test_every_post_only_address_is_also_posted():
    refused_get = [name for name, row in ROWS.items() if 405 in row.get and row.post is None]
    assert not refused_get, f"Adresses POST seulement sans réponses au POST : {refused_get}"


# --- the world, built once for the module ------------------------------------------------------


WRITE = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


def written_tables(queries):
    return {m.group(1) for q in queries if (m := WRITE.match(q["sql"]))}


def request(world, persona, method, name):
    row = ROWS[name]
    filled = row.url(world)
    if isinstance(filled, str):
        url = filled
    elif isinstance(filled, dict):
        url = reverse(name, kwargs=filled)
    else:
        url = reverse(name, args=filled)
    if row.query:
        url = f"{url}?{row.query}"
    client = Client()
    if persona != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[persona]
    with CaptureQueriesContext(connection) as queries:
        try:
            response = getattr(client, method.lower())(url)
        except Exception:
            pytest.fail(
                f"{method} {url} en tant que {persona} : erreur 500\n{traceback.format_exc()}"
            )
    return url, response, written_tables(queries.captured_queries)


def check(world, persona, method, name, expected):
    url, response, written = request(world, persona, method, name)
    actual = response.status_code
    where = f"{method} {url} en tant que {persona} : attendu {expected}, obtenu {actual}"
    location = response.get("Location", "")
    if expected == LOGIN:
        assert (actual, location.split("?")[0]) == (302, reverse("login")), f"{where} {location}"
    elif expected == ADMIN_LOGIN:
        assert (actual, location.split("?")[0]) == (302, reverse("admin:login")), (
            f"{where} {location}"
        )
    else:
        assert actual == expected, f"{where} {location}"
    refused = expected in (LOGIN, ADMIN_LOGIN, 403, 404, 405)
    allowed_writes = {"django_session"}
    if method == "GET" and not refused:
        allowed_writes.add("mutualisation_documentaccess")  # the download log
        # The year's computation a page stores when its data changed (a cache of the engine).
        allowed_writes.add("costing_reimbursementresult")
    if refused or method == "GET":
        assert written <= allowed_writes, f"{where} ; écrit dans {sorted(written - allowed_writes)}"


GET_CASES = [(name, persona) for name in ROWS for persona in PERSONAS]
POST_CASES = [
    (name, persona) for name, row in ROWS.items() if row.post is not None for persona in PERSONAS
]


@pytest.mark.parametrize(("name", "persona"), GET_CASES, ids=[f"GET {n} {p}" for n, p in GET_CASES])
def test_get(world, db, name, persona):
    check(world, persona, "GET", name, ROWS[name].get[PERSONAS.index(persona)])


@pytest.mark.parametrize(
    ("name", "persona"), POST_CASES, ids=[f"POST {n} {p}" for n, p in POST_CASES]
)
def test_empty_post(world, db, name, persona):
    row = ROWS[name]
    answers = row.get if row.post == AS_GET else row.post
    check(world, persona, "POST", name, answers[PERSONAS.index(persona)])


# The lists a commune reader opens show its commune's records and nothing of the other's.
LISTS = {
    "conventions:list": {},
    "conventions:adhesions": {"year": YEAR},
    "conventions:adhesions-export": {"year": YEAR, "fmt": "csv"},
    "costing:reimbursements": {"year": YEAR},
    "costing:statements": {"year": YEAR},
}


@pytest.mark.parametrize("name", LISTS)
@pytest.mark.parametrize(
    ("persona", "own", "other"), [("reader_a", "a", "b"), ("reader_b", "b", "a")]
)
def test_a_commune_reader_lists_its_own_conventions_only(world, db, name, persona, own, other):
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[persona]
    page = client.get(reverse(name, kwargs=LISTS[name])).content.decode()
    assert getattr(world, f"convention_{own}").reference in page
    assert getattr(world, f"convention_{other}").reference not in page


def tables_of(response) -> list:
    """The django-tables2 tables a page rendered (from its template contexts)."""
    from django_tables2 import Table

    found = {}
    for context in response.context or []:
        for layer in getattr(context, "dicts", [context]):
            for value in layer.values() if isinstance(layer, dict) else ():
                if isinstance(value, Table):
                    found[id(value)] = value
    return list(found.values())


PAGES_READ = [
    (name, persona)
    for name in ROWS
    for persona in ("reader_a", "finance")
    if ROWS[name].get[PERSONAS.index(persona)] == 200
]


@pytest.mark.parametrize(("name", "persona"), PAGES_READ, ids=[f"{n} {p}" for n, p in PAGES_READ])
def test_a_tables_sort_and_page_parameters_never_break_its_page(world, db, name, persona):
    """Each table of a page reads its sort and page from the address (with its prefix): any
    value typed there (a column it has not, a sort on a table that does not sort, a page that
    is no number) leaves the page answering as before, never a 500."""
    url, response, _written = request(world, persona, "GET", name)
    tables = tables_of(response)
    if not tables:
        return
    garbage = {}
    for table in tables:
        garbage[table.prefixed_order_by_field] = "zz,-1.5"
        garbage[table.prefixed_page_field] = "abc"
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[persona]
    try:
        again = client.get(
            url.split("?")[0], {**dict(response.wsgi_request.GET.lists()), **garbage}
        )
    except Exception:
        pytest.fail(
            f"GET {url} {garbage} en tant que {persona} : erreur 500\n{traceback.format_exc()}"
        )
    assert again.status_code == response.status_code, f"{url} {garbage}"
