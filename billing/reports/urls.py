"""Finance report pages (/reports/...)."""

from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("csv/<slug:view>/", views.csv_export, name="csv"),
    path("me/", views.my_usage, name="me"),
]
