"""Forms of the costing screens (shape of the input, French messages)."""

from django import forms
from django.core.validators import RegexValidator
from django.forms import inlineformset_factory
from django.utils.translation import gettext_lazy as _

from conventions.forms import DateInput
from costing.models import ACCOUNT_FORMAT_MESSAGE, CostBase, CostLine

MONTHS = [
    _("janvier"), _("février"), _("mars"), _("avril"), _("mai"), _("juin"),
    _("juillet"), _("août"), _("septembre"), _("octobre"), _("novembre"), _("décembre"),
]  # fmt: skip
MONTH_ABBREVIATIONS = [
    _("janv."), _("févr."), _("mars"), _("avr."), _("mai"), _("juin"),
    _("juil."), _("août"), _("sept."), _("oct."), _("nov."), _("déc."),
]  # fmt: skip


class CostBaseForm(forms.ModelForm):
    class Meta:
        model = CostBase
        fields = [
            "service",
            "year",
            "source",
            "source_year",
            "reference_units",
            "reference_basis",
            "reference_year",
            "notes",
        ]
        localized_fields = ["reference_units"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}


class CostLineForm(forms.ModelForm):
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


CostLineFormSet = inlineformset_factory(
    CostBase, CostLine, form=CostLineForm, extra=2, can_delete=True
)


class NotificationForm(forms.Form):
    notified_on = forms.DateField(label=_("Notifié aux bénéficiaires le"), widget=DateInput())


class UnitCostCorrectionForm(forms.Form):
    """The reason of a correction of a notified unit cost (a new version)."""

    reason = forms.CharField(
        label=_("Motif de la correction"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        error_messages={"required": _("Indiquez le motif de la correction.")},
    )


class ProvisionalForm(forms.Form):
    index_now = forms.DecimalField(label=_("Indice de l'année N"), localize=True, min_value=0)
    index_before = forms.DecimalField(label=_("Indice de l'année N-1"), localize=True, min_value=0)


class UsageGridForm(forms.Form):
    """Quantities of one service for a year: a cell per beneficiary and month."""

    def __init__(self, *args, beneficiaries, year, **kwargs):
        super().__init__(*args, **kwargs)
        self.beneficiaries = beneficiaries
        self.year = year
        for beneficiary in beneficiaries:
            for month, name in enumerate(MONTHS, start=1):
                self.fields[self.key(beneficiary.pk, month)] = forms.DecimalField(
                    label=f"{beneficiary.name} — {name} {year}",
                    required=False,
                    min_value=0,
                    max_digits=12,
                    decimal_places=3,
                    localize=True,
                    error_messages={"min_value": _("Quantité négative.")},
                )

    @staticmethod
    def key(beneficiary_id, month):
        return f"q_{beneficiary_id}_{month}"

    def rows(self, other_sources=None):
        """(beneficiary, [(cell, units recorded from other sources), …]) per beneficiary."""
        other_sources = other_sources or {}
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
            )
            for beneficiary in self.beneficiaries
        ]

    def values(self):
        return {
            (beneficiary.pk, month): self.cleaned_data[self.key(beneficiary.pk, month)]
            for beneficiary in self.beneficiaries
            for month in range(1, 13)
        }


class UsageImportForm(forms.Form):
    file = forms.FileField(
        label=_("Fichier CSV ou XLSX"),
        help_text=_(
            "Colonnes : convention, beneficiaire (code INSEE ou SIREN), service, mois (AAAA-MM), "
            "quantite, ponderation (facultatif), reference (facultatif)."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )


class RemarkForm(forms.Form):
    text = forms.CharField(
        label=_("Votre remarque"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )


class CorrectionForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif de la correction"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
