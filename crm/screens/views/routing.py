"""Routing screens: an offered agent accepts or declines from the queue; managers set each
team's routing, the ordered routing rules and the defaults (Settings → Routing)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.models import Team
from escalation.routing import services as routing_services
from escalation.routing.models import RoutingRule, RoutingSettings

from ..access import manager_required, staff_required
from ..errors import maps_domain_errors
from ..routing_forms import RoutingDefaultsForm, RoutingRuleForm, TeamRoutingForm
from .base import render_page

TEMPLATE = "crm/settings/routing.html"


@staff_required
@require_POST
@maps_domain_errors
def accept_offer(request, escalation_id: int):
    escalation = routing_services.accept_offer(escalation_id=escalation_id, agent=request.user)
    url = f"/crm/conversations/{escalation.conversation_id}/"
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@staff_required
@require_POST
@maps_domain_errors
def decline_offer(request, escalation_id: int):
    routing_services.decline_offer(escalation_id=escalation_id, agent=request.user)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect("crm:queue")


def _context(*, team_forms=None, rule_form=None, defaults_form=None) -> dict:
    team_forms = team_forms or {}
    teams = list(Team.objects.select_related("routing").order_by("name"))
    return {
        "teams": [
            (team, team_forms.get(team.pk) or TeamRoutingForm.for_team(team)) for team in teams
        ],
        "rules": list(RoutingRule.objects.select_related("team")),
        "rule_form": rule_form or RoutingRuleForm(prefix="rule"),
        "defaults_form": defaults_form or RoutingDefaultsForm.for_settings(RoutingSettings.load()),
    }


def _page(request, status=200, **forms):
    return render_page(request, TEMPLATE, _context(**forms), nav="settings", status=status)


def _put_errors(form, error: ValidationError) -> None:
    """The service's field errors onto the form's fields (names differ for a few)."""
    for field, messages_ in error.message_dict.items():
        name = form.FIELD_OF.get(field, field) if hasattr(form, "FIELD_OF") else field
        form.add_error(name if name in form.fields else None, messages_)


@manager_required
@require_GET
def routing_settings(request):
    return _page(request)


@manager_required
@require_POST
def save_team_routing(request, team_id: int):
    team = get_object_or_404(Team.objects.select_related("routing"), pk=team_id)
    form = TeamRoutingForm.for_team(team, request.POST)
    if form.is_valid():
        try:
            routing_services.update_team_routing(team=team, **form.changes())
        except ValidationError as error:
            _put_errors(form, error)
        else:
            messages.success(request, _("Routing of %(team)s saved.") % {"team": team.name})
            return redirect("crm:routing-settings")
    return _page(request, status=400, team_forms={team.pk: form})


@manager_required
@require_POST
def add_rule(request):
    form = RoutingRuleForm(request.POST, prefix="rule")
    if form.is_valid():
        try:
            routing_services.save_rule(**form.cleaned_data)
        except ValidationError as error:
            _put_errors(form, error)
        else:
            messages.success(request, _("Rule “%(name)s” added.") % form.cleaned_data)
            return redirect("crm:routing-settings")
    return _page(request, status=400, rule_form=form)


def _rule(rule_id: int) -> RoutingRule:
    rule = RoutingRule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise Http404
    return rule


@manager_required
@require_POST
def change_rule(request, rule_id: int):
    """Move up or down, switch on or off, or delete (the button pressed says which)."""
    rule = _rule(rule_id)
    action = request.POST.get("action")
    if action in ("up", "down"):
        routing_services.move_rule(rule=rule, up=action == "up")
    elif action == "toggle":
        routing_services.save_rule(rule=rule, is_active=not rule.is_active)
    elif action == "delete":
        routing_services.delete_rule(rule=rule)
        messages.success(request, _("Rule “%(name)s” deleted.") % {"name": rule.name})
    else:
        messages.error(request, _("Unknown action."))
    return redirect("crm:routing-settings")


@manager_required
@require_POST
def save_defaults(request):
    form = RoutingDefaultsForm.for_settings(RoutingSettings.load(), request.POST)
    if form.is_valid():
        try:
            routing_services.update_routing_settings(**form.changes())
        except ValidationError as error:
            _put_errors(form, error)
        else:
            messages.success(request, _("Routing defaults saved."))
            return redirect("crm:routing-settings")
    return _page(request, status=400, defaults_form=form)
