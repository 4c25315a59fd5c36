"""Who may use the management API: staff users, by DRF token or admin session.

Tokens are DRF's (`rest_framework.authtoken`): create one for a staff user in the
admin (Auth Token -> Tokens) or with `manage.py drf_create_token USERNAME`, and send
it as `Authorization: Token <token>`. TokenAuthentication comes first so an
anonymous request gets 401 with `WWW-Authenticate: Token` (a logged-in non-staff
user or token gets 403).
"""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.permissions import IsAdminUser

AUTHENTICATION = [TokenAuthentication, SessionAuthentication]
PERMISSIONS = [IsAdminUser]


class ManagementAPI:
    """Mixed into every management view: the one place auth is declared."""

    authentication_classes = AUTHENTICATION
    permission_classes = PERMISSIONS


class Pages(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class UsagePages(CursorPagination):
    """The ledger grows while it is read: a cursor never skips or repeats rows."""

    ordering = "-created_at"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
