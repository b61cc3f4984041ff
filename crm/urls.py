"""Customer-facing HTTP: the widget script, its demo page and its conversation start."""

from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/crm/", permanent=False)),
]
