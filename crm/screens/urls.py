"""CRM screens for agents and managers (under /crm/)."""

urlpatterns = []
