"""Finance report pages (/reports/...)."""

urlpatterns: list = []
