"""The home page's « À faire » (costing.todo), rendered where the territory's home includes it:
the home page belongs to the reference data (mutualisation), which may not import the apps that
depend on it; the template loads this tag instead."""

from django import template

from costing.todo import todo_for

register = template.Library()


@register.inclusion_tag("mutualisation/_todo.html", takes_context=True)
def todo_section(context):
    return {"todo": todo_for(context["request"].user)}
