"""The cells of the adhesion matrix (templates/conventions/adhesions.html), written in Python:
a territory's page holds thousands of them (50 communes × a hundred services), which the
template language rendered at about 40 µs each, most of the page's time."""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from conventions.services.adhesions import AdhesionStatus

register = template.Library()


@register.simple_tag
def adhesion_cells(row, visible) -> str:
    """The <td> of each of ``row``'s cells: its status, the conventions concerned (a link to
    those in ``visible``, ids), the scheme's action for a project without convention."""
    labels = {value: str(label) for value, label in AdhesionStatus.choices}
    # A cell without convention nor action reads the same in every row: written once.
    plain = {status: cell_html(None, status, labels, visible) for status in labels}
    return mark_safe(  # noqa: S308 - each cell built by format_html, its values escaped
        "".join(
            cell_html(cell, cell.status, labels, visible)
            if cell.conventions or cell.action is not None
            else plain[cell.status]
            for cell in row.cells
        )
    )


def cell_html(cell, status: str, labels: dict, visible) -> str:
    """A cell's <td> (``cell`` None: one of ``status`` without convention nor action)."""
    label = labels[status]
    if status == AdhesionStatus.NONE:
        badge = format_html('<span class="small text-body-secondary">{}</span>', label)
    else:
        colour = "text-bg-success" if status == AdhesionStatus.ADHERENT else "text-bg-warning"
        badge = format_html('<span class="badge {}">{}</span>', colour, label)
    if cell is None:
        return format_html('<td class="adhesion adhesion-{}">{}</td>', status.lower(), badge)
    links = format_html_join(
        "",
        '<span class="d-block small">{}{}</span>',
        (
            (
                format_html(
                    '<a href="{}">{}</a>', link.convention.get_absolute_url(), link.reference
                )
                if link.convention.pk in visible
                else link.reference,
                format_html(
                    ' <span class="text-body-secondary">({})</span>', link.status_label.lower()
                )
                if link.status == AdhesionStatus.PROJECT
                else "",
            )
            for link in cell.conventions
        ),
    )
    action = ""
    if cell.action is not None and not cell.conventions:
        action = format_html(
            '<span class="d-block small text-body-secondary">{}</span>',
            gettext("Prévue au schéma (%(target)s)") % {"target": cell.action.target_year},
        )
    return format_html(
        '<td class="adhesion adhesion-{}">{}{}{}</td>', status.lower(), badge, links, action
    )
