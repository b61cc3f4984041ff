"""/api/: the DRF v1 API, its OpenAPI schema and docs, and inbound channel webhooks."""

urlpatterns = []
