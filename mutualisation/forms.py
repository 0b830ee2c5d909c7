from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import IntegrityError, models, transaction
from django.db.models.fields import BLANK_CHOICE_DASH
from django.utils.text import get_text_list
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

BLANK_LABELS = {BLANK_CHOICE_DASH[0][1], "—", ""}
# The first choice of a list where nothing is chosen yet (Django writes « --------- »).
EMPTY_CHOICE = _("— Choisir —")


def name_empty_choices(form) -> None:
    """Give every list of ``form`` the French empty choice: model choice fields (their
    ``empty_label``) and the blank choice of fields with choices."""
    for field in form.fields.values():
        if getattr(field, "empty_label", None) is not None:
            # ModelChoiceField, and django-filter's choice fields (whose widget may still list
            # the choices of the field it was copied from)
            field.empty_label = EMPTY_CHOICE
            field.widget.choices = field.choices
        elif isinstance(field, forms.ChoiceField) and not isinstance(field, forms.ModelChoiceField):
            choices = list(field.choices)
            if choices and choices[0][0] == "" and choices[0][1] in BLANK_LABELS:
                field.choices = [("", EMPTY_CHOICE), *choices[1:]]


class NamedEmptyChoices:
    """Form mixin: the lists read « — Choisir — » when nothing is chosen yet."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        name_empty_choices(self)


class Form(NamedEmptyChoices, forms.Form):
    """The base of the project's forms (and of its filters' forms)."""


class ModelForm(NamedEmptyChoices, forms.ModelForm):
    """The base of the project's model forms (and of the rows of its formsets)."""


def limit_username(form):
    """Django's login form shows the username's maximum length but never checks it: a longer
    one went on to django-axes, whose record of the failed attempt holds 255 characters (a 500
    on PostgreSQL). It is refused as any too long value instead."""
    field = form.fields["username"]
    field.validators.append(MaxLengthValidator(field.max_length))


class LoginForm(AuthenticationForm):
    """Django's login form with French labels that name what is expected."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit_username(self)
        self.fields["username"].label = _("Identifiant")
        self.fields["password"].label = _("Mot de passe")
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})


class AdminLoginForm(AdminAuthenticationForm):
    """The administration's login form, with the same check of the username's length."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit_username(self)


class DecimalField(forms.DecimalField):
    """Django's decimal field, refusing NaN and Infinity as soon as it reads them. Django's own
    reads « sNaN » as a signalling NaN and refuses it only when validating; checking what changed
    in an edited form compares it first, which raises (a 500 on any edit page with a decimal)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and not value.is_finite():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return value


def finite_decimals(db_field, **kwargs):
    """``formfield_callback`` of the model forms: their decimals are the DecimalField above."""
    if isinstance(db_field, models.DecimalField):
        kwargs.setdefault("form_class", DecimalField)
    return db_field.formfield(**kwargs)


def carry_version(form, version: int) -> None:
    """Show an edit form refused for an edit conflict again with the version saved meanwhile:
    the person's input stays, the conflict message is read, and saving again (knowingly, as the
    message invites) goes through; a save made since the refusal still conflicts."""
    form.data = form.data.copy()
    form.data[form.add_prefix("version")] = version


class RowsConflict(Exception):
    """Rows valid one by one and together that the database still refuses in the order they are
    written (two rows exchanging their communes, say): nothing is written. ``str()`` is French."""

    def __init__(self):
        super().__init__(
            gettext(
                "Deux lignes échangent leurs valeurs (une commune, un service, un numéro…) : "
                "elles ne peuvent être enregistrées ensemble. Rien n'a été enregistré ; "
                "modifiez-les en deux fois."
            )
        )


class InlineFormSet(forms.BaseInlineFormSet):
    """The base of the project's inline formsets.

    - Two rows that a unique constraint forbids are explained by the constraint's own French
      message, or else by the fields' French labels (never by their code names, as Django's is).
    - Its rows' lists read « — Choisir — » when nothing is chosen yet.
    - Saving is all or nothing, rows removed first (a row removed frees its values for another
      row of the same form); rows the database still refuses raise RowsConflict, never a 500.
    """

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        name_empty_choices(form)
        return form

    def __init__(self, *args, choices=None, **kwargs):
        # {field name: queryset}: the choices every row offers (e.g. the territory's organisations).
        self.choices = choices or {}
        super().__init__(*args, **kwargs)

    def add_fields(self, form, index):
        super().add_fields(form, index)
        for name, queryset in self.choices.items():
            if name in form.fields:
                form.fields[name].queryset = queryset

    def save(self, commit=True):
        if not commit:
            return super().save(commit=False)
        try:
            with transaction.atomic():
                return super().save(commit=True)
        except IntegrityError as error:
            raise RowsConflict from error

    def save_existing_objects(self, commit=True):
        removed = []
        if commit:
            for form in self.deleted_forms:
                instance = form.instance
                if form in self.initial_forms and instance.pk and not instance._state.adding:
                    removed.append(instance)
                    self.delete_existing(instance, commit=True)
        saved = super().save_existing_objects(commit)
        self.deleted_objects = removed + self.deleted_objects
        return saved

    def get_unique_error_message(self, unique_check):
        shown = [name for name in unique_check if name != self.fk.name]
        for constraint in self.model._meta.constraints:
            if (
                isinstance(constraint, models.UniqueConstraint)
                and [name for name in constraint.fields if name != self.fk.name] == shown
                and constraint.violation_error_message != constraint.default_violation_error_message
            ):
                return constraint.get_violation_error_message()
        labels = [str(self.model._meta.get_field(name).verbose_name) for name in shown]
        return gettext("Corrigez les lignes en double : %(fields)s doivent être uniques.") % {
            "fields": get_text_list([f"« {label} »" for label in labels], gettext("et"))
        }
