"""The people of `make load` (run by loadtest/run.py, which prepares their data and accounts).

- Managers browse the conventions and the year's reimbursements, create draft conventions and
  edit the title of their own drafts (optimistic lock: the form's hidden version).
- Finance officers compute the reimbursements and the dashboard, recompute the next year's unit
  costs, fill their own cells of the usage grids (the grid's hidden « loaded » field), download
  issued and draft statement PDFs, summaries and exports.
- Commune readers list their commune's statements, download them and remark on the drafts.

Every page is fetched as a browser would: forms are read from the HTML and posted back whole,
with the CSRF token and an Origin header, over HTTPS. A write counts only once the page it
redirects to shows its success message; it is then appended to LOAD_WRITES (JSON lines) for the
check that follows the run. A 409 (someone else saved first) is a correct answer, not an error:
it is recorded as a conflict and the write is not expected in the database.
"""

import itertools
import json
import os
import random
import re
import uuid
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

from locust import HttpUser, between, events, task

PLAN = json.loads(Path(os.environ["LOAD_PLAN"]).read_text())
WRITES = Path(os.environ["LOAD_WRITES"]).open("a", encoding="utf-8")  # noqa: SIM115 (whole run)
ACCOUNTS = {role: iter(accounts) for role, accounts in PLAN["accounts"].items()}
YEARS = PLAN["years"]
STATEMENT_LINK = re.compile(r'href="/couts/etat/(\d+)/"')
CONVENTION_LINK = re.compile(r'href="/conventions/(CONV-\d{4}-\d{3})/"')
counter = itertools.count(1)
events_environment: dict = {}


@events.quit.add_listener
def save_errors(**_kwargs):
    """The failed requests with their reasons, and the exceptions raised in the scenario itself
    (a form missing from a page…), for loadtest/run.py to print and count."""
    environment = events_environment["environment"]
    exceptions = environment.runner.exceptions if environment.runner else {}
    Path(os.environ["LOAD_ERRORS"]).write_text(
        json.dumps(
            {
                "failures": list(environment.stats.serialize_errors().values()),
                "exceptions": [
                    {"count": e["count"], "msg": e["msg"], "traceback": e["traceback"]}
                    for e in exceptions.values()
                ],
            },
            ensure_ascii=False,
        )
    )


@events.init.add_listener
def keep_environment(environment, **_kwargs):
    events_environment["environment"] = environment


def record(kind: str, **fields) -> None:
    WRITES.write(json.dumps({"kind": kind, **fields}, ensure_ascii=False) + "\n")
    WRITES.flush()


class FormReader(HTMLParser):
    """The forms of a page and what a browser would submit for each: inputs with their value
    (checked boxes only), the selected option (or the first), textareas."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self.form: dict | None = None
        self.select: dict | None = None
        self.textarea: list | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.form = {
                "action": attributes.get("action") or "",
                "method": (attributes.get("method") or "get").lower(),
                "fields": [],
            }
            self.forms.append(self.form)
        elif self.form is None:
            return
        elif tag == "input":
            kind = (attributes.get("type") or "text").lower()
            name = attributes.get("name")
            if not name or kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attributes:
                    self.form["fields"].append([name, attributes.get("value") or "on"])
                return
            self.form["fields"].append([name, attributes.get("value") or ""])
        elif tag == "select":
            self.select = {
                "name": attributes.get("name"),
                "multiple": "multiple" in attributes,
                "first": None,
                "selected": [],
            }
        elif tag == "option" and self.select is not None:
            value = attributes.get("value", "")
            if self.select["first"] is None:
                self.select["first"] = value
            if "selected" in attributes:
                self.select["selected"].append(value)
        elif tag == "textarea":
            self.textarea = [attributes.get("name"), ""]

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "select" and self.select is not None:
            select, self.select = self.select, None
            values = select["selected"]
            if not values and not select["multiple"] and select["first"] is not None:
                values = [select["first"]]
            if self.form is not None and select["name"]:
                self.form["fields"].extend([select["name"], value] for value in values)
        elif tag == "textarea" and self.textarea is not None:
            name, text = self.textarea
            self.textarea = None
            if self.form is not None and name:
                self.form["fields"].append([name, text.removeprefix("\n")])


def post_form(html: str, action: str = "") -> list[list[str]]:
    """The fields of the page's POST form whose action is ``action`` ("" = the page itself)."""
    reader = FormReader()
    reader.feed(html)
    for form in reader.forms:
        if form["method"] == "post" and form["action"] == action:
            return form["fields"]
    raise LookupError(f"pas de formulaire {action or '(page)'}")


def set_field(fields: list[list[str]], name: str, value) -> None:
    for field in fields:
        if field[0] == name:
            field[1] = str(value)
            return
    fields.append([name, str(value)])


def field_value(fields: list[list[str]], name: str) -> str:
    return next(value for field, value in fields if field == name)


class Person(HttpUser):
    abstract = True
    role = ""
    wait_time = between(1, 3)

    def on_start(self):
        self.client.verify = os.environ["LOAD_CA"]
        self.account = next(ACCOUNTS[self.role])
        self.username = self.account["username"]
        page = self.get("/connexion/", "connexion")
        fields = post_form(page.text)
        set_field(fields, "username", self.username)
        set_field(fields, "password", self.account["password"])
        self.post("/connexion/", fields, "connexion", redirect="/")

    # --- requests, checked as a person would see them ----------------------------------------

    def get(self, path: str, name: str, *, content_type="text/html", contains=None):
        """GET that must answer 200 with that content type (a redirect to the login page, a 403
        or a 500 is a failure), and the given text if any."""
        with self.client.get(
            path, name=name, allow_redirects=False, catch_response=True
        ) as response:
            problem = None
            if response.status_code != 200:
                problem = f"{response.status_code} au lieu de 200"
            elif not response.headers.get("Content-Type", "").startswith(content_type):
                problem = f"type {response.headers.get('Content-Type')}"
            elif contains is not None and contains not in unescape(response.text):
                problem = f"« {contains} » absent de la page"
            elif content_type == "application/pdf" and not response.content.startswith(b"%PDF"):
                problem = "PDF illisible"
            if problem:
                response.failure(problem)
            response.as_expected = problem is None
        return response

    def download(self, path: str, name: str, content_type: str) -> None:
        """A document whose download the application logs (DocumentAccess): a write too."""
        if self.get(path, name, content_type=content_type).as_expected:
            record("document-access", user=self.username, path=path)

    def post(self, path: str, fields, name: str, *, redirect: str, conflict_ok=False):
        """POST a form; success is a 302 to ``redirect`` (a regular expression). Returns the
        response, or None when it failed (or was a 409 conflict, when allowed)."""
        with self.client.post(
            path,
            data=fields,
            name=name,
            headers={"Origin": self.host, "Referer": f"{self.host}{path}"},
            allow_redirects=False,
            catch_response=True,
        ) as response:
            location = response.headers.get("Location", "")
            if response.status_code == 409 and conflict_ok:
                response.success()
                record("conflict", user=self.username, path=path)
                return None
            if response.status_code != 302 or not re.fullmatch(redirect, location):
                response.failure(f"{response.status_code} vers {location!r}")
                return None
        return response

    def confirmed(self, location: str, name: str, message: str) -> bool:
        """The page a POST redirected to shows its success message (an error message could be
        shown after the same redirect)."""
        return self.get(location, name, contains=message).as_expected

    def token(self) -> str:
        return f"{self.username}-{next(counter)}-{uuid.uuid4().hex[:8]}"


class Manager(Person):
    role = "manager"
    fixed_count = int(os.environ.get("LOAD_MANAGERS", "1"))

    def on_start(self):
        super().on_start()
        self.own = []
        self.create_convention()

    @task(4)
    def browse_conventions(self):
        page = self.get("/conventions/", "conventions : liste")
        references = CONVENTION_LINK.findall(page.text)
        if references:
            self.get(f"/conventions/{random.choice(references)}/", "conventions : fiche")

    @task(1)
    def search_conventions(self):
        self.get("/conventions/?q=service&status=IN_FORCE", "conventions : recherche")

    @task(3)
    def edit_own_convention(self):
        if not self.own:
            return
        reference = random.choice(self.own)
        path = f"/conventions/{reference}/modifier/"
        page = self.get(path, "conventions : modification")
        if not page.as_expected:
            return
        fields = post_form(page.text)
        title = f"Convention de charge {self.token()}"
        set_field(fields, "title", title)
        if self.post(
            path,
            fields,
            "conventions : modification",
            redirect=f"/conventions/{reference}/",
            conflict_ok=True,
        ) and self.confirmed(
            f"/conventions/{reference}/", "conventions : fiche", "Convention enregistrée."
        ):
            record("convention-title", user=self.username, reference=reference, title=title)

    @task(1)
    def create_convention(self):
        page = self.get("/conventions/nouvelle/", "conventions : création")
        if not page.as_expected:
            return
        fields = post_form(page.text)
        title = f"Convention de charge {self.token()}"
        for name, value in {
            "title": title,
            "kind": "MISE_A_DISPOSITION",
            "object": "Mise à disposition simulée par le test de charge.",
            "preamble": "Bonne organisation des services.",
            "start_date": "2027-01-01",
            "terms-settlement_mode": "TITRE",
            "terms-periodicity_months": "12",
            "terms-instalment_count": "4",
            "terms-unit_cost_method": "Charges du service divisées par les unités prévues.",
            "terms-end_date": "2029-12-31",
            "terms-notice_months": "3",
            "parties-0-organisation": PLAN["epci"],
            "parties-0-role": "PROVIDER",
            "parties-1-organisation": random.choice(PLAN["communes"]),
            "parties-1-role": "BENEFICIARY",
            "services-0-service": random.choice(PLAN["services"]),
        }.items():
            set_field(fields, name, value)
        response = self.post(
            "/conventions/nouvelle/",
            fields,
            "conventions : création",
            redirect=r"/conventions/CONV-\d{4}-\d{3}/",
        )
        if response is None:
            return
        location = response.headers["Location"]
        reference = location.strip("/").split("/")[-1]
        if self.confirmed(location, "conventions : fiche", f"Convention {reference} créée."):
            record("convention-create", user=self.username, reference=reference, title=title)
            self.own.append(reference)

    @task(2)
    def reimbursements(self):
        self.get(f"/couts/remboursements/{YEARS['open']}/", "remboursements")

    @task(1)
    def usage_state(self):
        self.get(f"/couts/recours/CONV-2026-001/{YEARS['open']}/", "recours : état")

    @task(1)
    def simulation(self):
        self.get("/couts/simulation/CONV-2027-001/", "simulation")


class Finance(Person):
    role = "finance"
    fixed_count = int(os.environ.get("LOAD_FINANCES", "1"))

    @task(2)
    def reimbursements(self):
        self.get(f"/couts/remboursements/{YEARS['open']}/", "remboursements")

    @task(2)
    def dashboard(self):
        self.get(f"/couts/tableau-de-bord/{YEARS['open']}/", "tableau de bord")

    @task(3)
    def issued_statement(self):
        page = self.get(f"/couts/etats/{YEARS['issued']}/", "états : liste")
        ids = STATEMENT_LINK.findall(page.text)
        if ids:
            pk = random.choice(ids)
            self.get(f"/couts/etat/{pk}/", "état : fiche")
            self.download(f"/couts/etat/{pk}/pdf/", "état émis : PDF", "application/pdf")

    @task(1)
    def draft_statement_pdf(self):
        page = self.get(f"/couts/etats/{YEARS['open']}/", "états : liste")
        ids = STATEMENT_LINK.findall(page.text)
        if ids:
            pk = random.choice(ids)
            self.download(f"/couts/etat/{pk}/pdf/", "projet d'état : PDF", "application/pdf")

    @task(1)
    def export(self):
        kind = random.choice(["lignes", "titres", "mandats", "acomptes"])
        fmt, content_type = random.choice(
            [("csv", "text/csv"), ("xlsx", "application/vnd.openxmlformats")]
        )
        self.download(f"/couts/exports/{YEARS['issued']}/{kind}.{fmt}", "exports", content_type)

    @task(1)
    def instalments(self):
        self.get(f"/couts/acomptes/{YEARS['open']}/", "acomptes")

    @task(3)
    def usage_grid(self):
        reference, service, beneficiary, month = random.choice(self.account["cells"])
        path = f"/couts/recours/{reference}/{service}/{YEARS['open']}/"
        page = self.get(path, "recours : grille")
        if not page.as_expected:
            return
        fields = post_form(page.text)
        name = f"q_{beneficiary}_{month}"
        field_value(fields, name)  # the cell is on the grid
        quantity = str(random.randint(1, 400))
        set_field(fields, name, quantity)
        if self.post(
            path, fields, "recours : grille", redirect=path, conflict_ok=True
        ) and self.confirmed(path, "recours : grille", "case(s) enregistrée(s)."):
            record(
                "usage-cell",
                user=self.username,
                reference=reference,
                service=service,
                beneficiary=beneficiary,
                month=month,
                quantity=quantity,
            )

    @task(1)
    def compute_unit_cost(self):
        if not self.account["bases"]:
            return
        pk = random.choice(self.account["bases"])
        path = f"/couts/base/{pk}/"
        page = self.get(path, "coût unitaire : base")
        if not page.as_expected:
            return
        fields = post_form(page.text, f"/couts/base/{pk}/calculer/")
        started = datetime.now(UTC).isoformat()
        if self.post(
            f"/couts/base/{pk}/calculer/", fields, "coût unitaire : calcul", redirect=path
        ) and self.confirmed(
            path, "coût unitaire : base", f"Coût unitaire {YEARS['computed']} calculé"
        ):
            record("unit-cost-compute", user=self.username, base=pk, started=started)

    @task(1)
    def summary_pdf(self):
        siren = "246300701"  # the Métropole's consolidated summary
        self.download(
            f"/couts/recapitulatif/{YEARS['issued']}/{siren}.pdf",
            "récapitulatif : PDF",
            "application/pdf",
        )


class Reader(Person):
    role = "reader"
    fixed_count = int(os.environ.get("LOAD_READERS", "1"))

    def statements(self, year):
        page = self.get(f"/couts/etats/{year}/", "états : liste")
        return STATEMENT_LINK.findall(page.text) if page.as_expected else []

    @task(3)
    def issued_statement(self):
        ids = self.statements(YEARS["issued"])
        if ids:
            pk = random.choice(ids)
            self.get(f"/couts/etat/{pk}/", "état : fiche")
            self.download(f"/couts/etat/{pk}/pdf/", "état émis : PDF", "application/pdf")

    @task(1)
    def draft_statement_pdf(self):
        ids = self.statements(YEARS["open"])
        if ids:
            pk = random.choice(ids)
            self.download(f"/couts/etat/{pk}/pdf/", "projet d'état : PDF", "application/pdf")

    @task(2)
    def remark(self):
        ids = self.statements(YEARS["open"])
        random.shuffle(ids)
        for pk in ids:
            page = self.get(f"/couts/etat/{pk}/", "état : fiche")
            action = f"/couts/etat/{pk}/remarque/"
            if not page.as_expected or f'action="{action}"' not in page.text:
                continue  # the commune is the creditor here: no remark
            fields = post_form(page.text, action)
            text = f"Remarque de charge {self.token()}"
            set_field(fields, "text", text)
            if self.post(
                action, fields, "état : remarque", redirect=f"/couts/etat/{pk}/"
            ) and self.confirmed(
                f"/couts/etat/{pk}/", "état : fiche", "Remarque transmise à la Métropole."
            ):
                record("remark", user=self.username, statement=int(pk), text=text)
            return

    @task(1)
    def conventions(self):
        page = self.get("/conventions/", "conventions : liste")
        references = CONVENTION_LINK.findall(page.text)
        if references:
            self.get(f"/conventions/{random.choice(references)}/", "conventions : fiche")

    @task(1)
    def reimbursements(self):
        self.get(f"/couts/remboursements/{YEARS['open']}/", "remboursements")
