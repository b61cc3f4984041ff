"""Analytics for managers: escalation rate, wait and resolution times, reasons."""

from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from escalation.models import Priority, Reason
from escalation.routing.selectors import sla_report
from escalation.selectors import escalation_metrics, satisfaction_report, verdict_precision

from .. import charts, selectors
from ..access import manager_required
from ..forms import AnalyticsFilterForm
from .base import render_page


@manager_required
@require_GET
def analytics(request):
    form = AnalyticsFilterForm(request.GET or None)
    if form.is_bound:
        form.is_valid()
    filters = form.metrics_filters()
    metrics = escalation_metrics(filters)
    wait, resolution = metrics["wait_time"], metrics["resolution_time"]
    reasons = metrics["reasons"]
    priorities = metrics["priorities"]
    time_bars = charts.bars(
        [
            ("wait_median", wait["median"] or 0),
            ("wait_p90", wait["p90"] or 0),
            ("resolution_median", resolution["median"] or 0),
            ("resolution_p90", resolution["p90"] or 0),
        ]
    )
    verdicts = verdict_precision(filters)
    reason_labels = dict(Reason.choices)
    context = {
        "verdicts": verdicts,
        "verdict_rows": [
            {"label": reason_labels.get(code, code), **row}
            for code, row in verdicts["reasons"].items()
        ],
        "daily": charts.columns(selectors.escalations_per_day(filters)),
        "form": form,
        "filters": filters,
        "metrics": metrics,
        "rate": charts.donut(metrics["escalation_rate"]),
        "time_bars": {bar["label"]: bar for bar in time_bars},
        "durations": {
            "wait_median": charts.duration(wait["median"]),
            "wait_p90": charts.duration(wait["p90"]),
            "wait_mean": charts.duration(wait["mean"]),
            "resolution_median": charts.duration(resolution["median"]),
            "resolution_p90": charts.duration(resolution["p90"]),
            "resolution_mean": charts.duration(resolution["mean"]),
        },
        "reason_bars": charts.bars(
            [(label, reasons.get(code, 0)) for code, label in Reason.choices]
        ),
        "priority_bars": charts.bars(
            [
                (member.label, priorities.get(member.code, 0))
                for member in sorted(Priority, reverse=True)
            ]
        ),
    }
    context.update(_sla_context(filters))
    context.update(_csat_context(filters, reason_labels))
    return render_page(request, "crm/analytics/analytics.html", context, nav="analytics")


def _sla_context(filters) -> dict:
    """Routing's partial (templates/crm/analytics/_sla.html)."""
    sla = sla_report(filters)
    return {
        "sla": sla,
        "sla_groups": [
            (_("By team"), sla["by_team"]),
            (_("By priority"), sla["by_priority"]),
            (_("By reason"), sla["by_reason"]),
        ],
        "first_reply": {
            "median": charts.duration(sla["first_reply"]["median"]),
            "p90": charts.duration(sla["first_reply"]["p90"]),
        },
    }


def _csat_context(filters, reason_labels) -> dict:
    """Customer satisfaction (templates/crm/analytics/_csat.html): the ratings' spread and the
    average per agent, team and reason."""
    csat = satisfaction_report(filters)
    return {
        "csat": csat,
        "csat_scores": charts.bars([(score, n) for score, n in csat["scores"].items()]),
        "csat_groups": [
            (
                "agent",
                _("By agent"),
                charts.score_bars(
                    [(r["name"], r["average"], r["count"]) for r in csat["by_agent"]]
                ),
            ),
            (
                "team",
                _("By team"),
                charts.score_bars([(r["name"], r["average"], r["count"]) for r in csat["by_team"]]),
            ),
            (
                "reason",
                _("By reason"),
                charts.score_bars(
                    [
                        (reason_labels.get(r["reason"], r["reason"]), r["average"], r["count"])
                        for r in csat["by_reason"]
                    ]
                ),
            ),
        ],
    }
