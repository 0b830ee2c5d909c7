"""What the summary of a form's errors (templates/_error_summary.html) asks of its formsets."""

from django import template

register = template.Library()


@register.filter
def any_errors(formsets) -> bool:
    """Whether one of the formsets (a name → formset dict) has an error, of a row or of all."""
    return any(formset.total_error_count() for formset in (formsets or {}).values())
