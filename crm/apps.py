from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self):
        from .revocation import connect_revocation_signals

        connect_revocation_signals()
