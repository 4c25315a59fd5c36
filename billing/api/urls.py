"""Management REST API (/api/...)."""

urlpatterns: list = []
