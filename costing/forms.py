"""Forms of the costing screens (shape of the input, French messages)."""

import json
from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator
from django.forms import inlineformset_factory
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from conventions.forms import DateInput
from costing.models import ACCOUNT_FORMAT_MESSAGE, CostBase, CostLine
from mutualisation.collation import FrenchOrder
from mutualisation.forms import DecimalField, Form, InlineFormSet, ModelForm, finite_decimals
from mutualisation.models import Service, UnitWeight
from mutualisation.rules import territories_of
from mutualisation.templatetags.money import units
from mutualisation.validators import validate_plausible_date

MONTHS = [
    _("janvier"), _("février"), _("mars"), _("avril"), _("mai"), _("juin"),
    _("juillet"), _("août"), _("septembre"), _("octobre"), _("novembre"), _("décembre"),
]  # fmt: skip
MONTH_ABBREVIATIONS = [
    _("janv."), _("févr."), _("mars"), _("avr."), _("mai"), _("juin"),
    _("juil."), _("août"), _("sept."), _("oct."), _("nov."), _("déc."),
]  # fmt: skip


class CostBaseForm(ModelForm):
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version
        if user is not None:
            # Only the services of the territories the user works for.
            self.fields["service"].queryset = Service.objects.filter(
                territory__in=territories_of(user)
            ).order_by(FrenchOrder("name"))

    class Meta:
        model = CostBase
        formfield_callback = finite_decimals
        fields = [
            "service",
            "year",
            "source",
            "source_year",
            "reference_units",
            "reference_basis",
            "reference_year",
            "forecast_cost",
            "actual_cost",
            "notes",
        ]
        localized_fields = ["reference_units", "forecast_cost", "actual_cost"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}


class CostLineForm(ModelForm):
    account = forms.CharField(
        label=_("Compte (M57)"),
        max_length=10,
        validators=[RegexValidator(r"^[0-9]{2,10}$", ACCOUNT_FORMAT_MESSAGE)],
        error_messages={
            "required": _("Indiquez le compte M57 de la ligne (ex. : 6411)."),
            "max_length": ACCOUNT_FORMAT_MESSAGE,
        },
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "6411"}),
    )

    class Meta:
        model = CostLine
        formfield_callback = finite_decimals
        fields = [
            "label",
            "category",
            "account",
            "accounts_amount",
            "budget_adjustment",
            "eligible",
            "justification",
        ]
        localized_fields = ["accounts_amount", "budget_adjustment"]
        widgets = {"justification": forms.Textarea(attrs={"rows": 1})}


# A cost base has a few dozen lines; the cap bounds what a forged management form can ask for.
MAX_COST_LINES = 200

CostLineFormSet = inlineformset_factory(
    CostBase,
    CostLine,
    form=CostLineForm,
    formset=InlineFormSet,
    extra=2,
    can_delete=True,
    max_num=MAX_COST_LINES,
    absolute_max=MAX_COST_LINES,
)


class NotificationForm(Form):
    notified_on = forms.DateField(
        label=_("Notifié aux bénéficiaires le"),
        widget=DateInput(),
        validators=[validate_plausible_date],
    )


class UnitCostCorrectionForm(Form):
    """The reason of a correction of a notified unit cost (a new version)."""

    reason = forms.CharField(
        label=_("Motif de la correction"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        error_messages={"required": _("Indiquez le motif de la correction.")},
    )


class ProvisionalForm(Form):
    # An index (INSEE, e.g. 104,2) has a few digits; 1e308 overflowed the computation.
    index_now = DecimalField(
        label=_("Indice de l'année N"), localize=True, min_value=0, max_digits=12, decimal_places=4
    )
    index_before = DecimalField(
        label=_("Indice de l'année N-1"),
        localize=True,
        min_value=Decimal("0.0001"),
        max_digits=12,
        decimal_places=4,
    )


# Why a cell of the grid is refused, said next to it and in the summary at the top of the grid.
GRID_CELL_ERRORS = {
    "invalid": _("Saisissez un nombre (ex. : 3,5)."),
    "min_value": _("Quantité négative : saisissez 0 ou plus."),
    "max_decimal_places": _("3 décimales au plus."),
    "max_whole_digits": _("9 chiffres au plus avant la virgule."),
    "max_digits": _("9 chiffres au plus avant la virgule."),
}


class GridQuantityField(DecimalField):
    """A quantity of the grid. A stored quantity (kept to the thousandth) is shown in French
    without its useless zeros: 3.500 reads « 3,5 », 12.000 « 12 », 1234.250 « 1 234,25 »."""

    def prepare_value(self, value):
        if isinstance(value, Decimal):
            return format_quantity(value)
        return value


def format_quantity(value: Decimal) -> str:
    """A quantity in French, grouped, up to three decimals, trailing zeros dropped."""
    return units(value)


class UsageGridForm(Form):
    """Quantities of one service for a year: a cell per beneficiary and month."""

    def __init__(self, *args, beneficiaries, year, **kwargs):
        super().__init__(*args, **kwargs)
        self.beneficiaries = beneficiaries
        self.year = year
        for beneficiary in beneficiaries:
            for month, name in enumerate(MONTHS, start=1):
                self.fields[self.key(beneficiary.pk, month)] = GridQuantityField(
                    label=f"{beneficiary.name} — {name} {year}",
                    required=False,
                    min_value=0,
                    max_digits=12,
                    decimal_places=3,
                    localize=True,
                    error_messages=GRID_CELL_ERRORS,
                )

    def refused_cells(self):
        """The cells refused, in the grid's order (row by row): what the summary lists."""
        return [
            self[self.key(beneficiary.pk, month)]
            for beneficiary in self.beneficiaries
            for month in range(1, 13)
            if self.key(beneficiary.pk, month) in self.errors
        ]

    @staticmethod
    def key(beneficiary_id, month):
        return f"q_{beneficiary_id}_{month}"

    def rows(self, other_sources=None, row_totals=None):
        """(beneficiary, [(cell, units recorded from other sources), …], the row's total) per
        beneficiary."""
        other_sources = other_sources or {}
        row_totals = row_totals or {}
        return [
            (
                beneficiary,
                [
                    (
                        self[self.key(beneficiary.pk, month)],
                        other_sources.get((beneficiary.pk, month)),
                    )
                    for month in range(1, 13)
                ],
                row_totals.get(beneficiary.pk),
            )
            for beneficiary in self.beneficiaries
        ]

    def values(self):
        return {
            (beneficiary.pk, month): self.cleaned_data[self.key(beneficiary.pk, month)]
            for beneficiary in self.beneficiaries
            for month in range(1, 13)
        }

    @staticmethod
    def encode_loaded(values: dict) -> str:
        """The grid as it was shown (a hidden field): only the cells a person changes from it
        are written, and a cell changed meanwhile by someone else is a conflict."""
        return json.dumps(
            {f"{b}_{m}": str(q) for (b, m), q in values.items() if q is not None}, sort_keys=True
        )

    def loaded(self) -> dict | None:
        raw = self.data.get("loaded")
        if not raw:
            return None
        try:
            shown = json.loads(raw)
            loaded = {
                tuple(int(part) for part in key.split("_")): Decimal(value)
                for key, value in shown.items()
            }
        except (ValueError, TypeError, ArithmeticError, AttributeError):
            return None
        # A quantity shown is a finite number: NaN (a signalling one cannot even be compared)
        # or Infinity means the hidden field was tampered with, and names no grid.
        if not all(quantity.is_finite() for quantity in loaded.values()):
            return None
        return loaded


class UsageImportForm(Form):
    file = forms.FileField(
        label=_("Fichier CSV ou XLSX"),
        help_text=_(
            "Colonnes : convention, beneficiaire (code INSEE ou SIREN), service, mois (AAAA-MM), "
            "quantite, ponderation (facultatif), reference (facultatif), motif (facultatif ; "
            "obligatoire pour une quantité négative, qui est un ajustement)."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )
    replace = forms.BooleanField(
        label=_("Remplacer"),
        required=False,
        help_text=_(
            "Remplace les recours déjà importés pour chaque convention, bénéficiaire, service et "
            "mois présents dans le fichier (tout ou rien)."
        ),
    )


class RemarkForm(Form):
    text = forms.CharField(
        label=_("Votre remarque"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )


class RemarkAnswerForm(Form):
    """Finance's answer to a commune's remark, and whether the remark is resolved (unticked: it
    stays, or is put back, open). Several on one page: each with its own ``auto_id``."""

    answer = forms.CharField(
        label=_("Réponse à la commune"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    resolved = forms.BooleanField(
        label=_("Remarque traitée"),
        required=False,
        help_text=_("Un projet ne s'émet qu'une fois toutes ses remarques traitées."),
    )


class CorrectionForm(Form):
    reason = forms.CharField(
        label=_("Motif de la correction"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )


QUANTITY_OPTIONS = {"max_digits": 12, "decimal_places": 3, "localize": True}


class UsageRecordForm(Form):
    """Correct one recorded use; the reason goes into its history."""

    quantity = DecimalField(label=_("Quantité"), **QUANTITY_OPTIONS)
    weight = forms.ModelChoiceField(
        label=_("Pondération"), queryset=UnitWeight.objects.none(), required=False
    )
    reference = forms.CharField(label=_("Référence"), max_length=80, required=False)
    reason = forms.CharField(
        label=_("Motif de la modification"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        help_text=_("Ex. : remarque de la commune sur le projet d'état."),
    )

    def __init__(self, *args, unit_type, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["weight"].queryset = UnitWeight.objects.filter(unit_type=unit_type)


class UsageAdjustmentForm(Form):
    """A justified adjustment of a payer's usage for a month (negative to withdraw units)."""

    beneficiary = forms.ModelChoiceField(label=_("Bénéficiaire"), queryset=None)
    service = forms.ModelChoiceField(label=_("Service"), queryset=None)
    month = forms.TypedChoiceField(
        label=_("Mois"), coerce=int, choices=[(i, name) for i, name in enumerate(MONTHS, 1)]
    )
    quantity = DecimalField(label=_("Quantité (négative pour retirer)"), **QUANTITY_OPTIONS)
    weight = forms.ModelChoiceField(
        label=_("Pondération"), queryset=UnitWeight.objects.none(), required=False
    )
    reference = forms.CharField(label=_("Référence"), max_length=80, required=False)
    reason = forms.CharField(
        label=_("Motif de l'ajustement"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )

    def __init__(self, *args, beneficiaries, services, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["beneficiary"].queryset = beneficiaries
        self.fields["service"].queryset = services
        self.fields["weight"].queryset = UnitWeight.objects.filter(
            unit_type__in=services.values("unit_type")
        )


class InstalmentCallForm(Form):
    up_to = forms.DateField(
        label=_("Appeler les acomptes échus jusqu'au"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=[validate_plausible_date],
    )


class InstalmentTitreForm(Form):
    number = forms.CharField(label=_("N° du titre émis"), max_length=40)


class InstalmentPaymentForm(Form):
    paid_on = forms.DateField(
        label=_("Encaissé le"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=[validate_plausible_date],
    )


class InstalmentCancelForm(Form):
    reason = forms.CharField(label=_("Motif de l'annulation"), max_length=200)


# Why a value of the simulation is refused, said next to it and in the summary above the form.
SIMULATION_COST_ERRORS = {
    "invalid": _("Saisissez un montant en euros (ex. : 19,80)."),
    "min_value": _("Montant négatif : saisissez 0 ou plus."),
    "max_decimal_places": _("2 décimales au plus (les centimes)."),
    "max_whole_digits": _("9 chiffres au plus avant la virgule."),
    "max_digits": _("9 chiffres au plus avant la virgule."),
}
SIMULATION_UNITS_ERRORS = {
    "invalid": _("Saisissez un nombre d'unités (ex. : 3,5)."),
    "min_value": _("Nombre d'unités négatif : saisissez 0 ou plus."),
    "max_decimal_places": _("3 décimales au plus."),
    "max_whole_digits": _("9 chiffres au plus avant la virgule."),
    "max_digits": _("9 chiffres au plus avant la virgule."),
}


class SimulationDecimalField(GridQuantityField):
    """A decimal typed the French way: « 3,5 », « 1 000,5 » (any space between the digits),
    shown in French without useless zeros."""

    def to_python(self, value):
        if isinstance(value, str):
            value = "".join(value.split()).replace("\u202f", "")
        return super().to_python(value)

    def __init__(self, *args, places_shown=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.places_shown = places_shown

    def prepare_value(self, value):
        if isinstance(value, Decimal) and value.is_finite():
            if self.places_shown is not None:  # an amount: 19,80, not 19,8
                return number_format(value, self.places_shown, force_grouping=True)
            return format_quantity(value)
        return value


class SimulationForm(Form):
    """The values a simulation may change (read from the address, nothing is stored): the unit
    cost of each service billed by unit, the units a year of each payer. An empty field keeps
    the project's value."""

    def __init__(self, *args, inputs, **kwargs):
        initial = {self.cost_key(pk): value for pk, value in inputs.unit_costs.items()}
        initial |= {self.units_key(*key): value for key, value in inputs.units.items()}
        super().__init__(*args, initial=initial, **kwargs)
        self.inputs = inputs
        for line in inputs.lines:
            self.fields[self.cost_key(line.pk)] = SimulationDecimalField(
                label=_("Coût unitaire — %(service)s (€)") % {"service": line.service.name},
                required=False,
                min_value=0,
                max_digits=11,
                decimal_places=2,
                places_shown=2,
                localize=True,
                error_messages=SIMULATION_COST_ERRORS,
            )
            for payer in inputs.payers:
                self.fields[self.units_key(line.pk, payer.pk)] = SimulationDecimalField(
                    label=_("%(payer)s — %(service)s : unités par an")
                    % {"payer": payer.name, "service": line.service.name},
                    required=False,
                    min_value=0,
                    max_digits=12,
                    decimal_places=3,
                    localize=True,
                    error_messages=SIMULATION_UNITS_ERRORS,
                )

    @staticmethod
    def cost_key(line_id):
        return f"cout_{line_id}"

    @staticmethod
    def units_key(line_id, payer_id):
        return f"unites_{line_id}_{payer_id}"

    def groups(self):
        """(line, its unit cost's field, [(payer, their units' field), …]) per line."""
        return [
            (
                line,
                self[self.cost_key(line.pk)],
                [(payer, self[self.units_key(line.pk, payer.pk)]) for payer in self.inputs.payers],
            )
            for line in self.inputs.lines
        ]

    def typed(self, name):
        """A valid form's value of ``name`` when it changes the project's (None otherwise: an
        empty field, or the default sent back, which keeps a forecast that varies by year)."""
        value = self.cleaned_data.get(name)
        return None if value is None or value == self.initial.get(name) else value

    def adjustment(self):
        """The values typed that change the project's, for ``services.simulate``."""
        from costing.services import SimulationAdjustment

        costs = {line.pk: self.typed(self.cost_key(line.pk)) for line in self.inputs.lines}
        units = {
            (line.pk, payer.pk): self.typed(self.units_key(line.pk, payer.pk))
            for line in self.inputs.lines
            for payer in self.inputs.payers
        }
        return SimulationAdjustment(
            unit_costs={k: v for k, v in costs.items() if v is not None},
            units={k: v for k, v in units.items() if v is not None},
        )
