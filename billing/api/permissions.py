"""Who may use the management API: staff users, by DRF token or admin session.

Tokens are DRF's (`rest_framework.authtoken`): create one for a staff user in the
admin (Auth Token -> Tokens) or with `manage.py drf_create_token USERNAME`, and send
it as `Authorization: Token <token>`. TokenAuthentication comes first so an
anonymous request gets 401 with `WWW-Authenticate: Token` (a logged-in non-staff
user or token gets 403).
"""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAdminUser

AUTHENTICATION = [TokenAuthentication, SessionAuthentication]
PERMISSIONS = [IsAdminUser]


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, with a body nested deeper than the parser can recurse (a
    RecursionError, which DRF does not catch) answered as a 400 like any bad JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


class ManagementAPI:
    """Mixed into every management view: the one place auth (and parsing) is declared."""

    authentication_classes = AUTHENTICATION
    permission_classes = PERMISSIONS
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]


class StrictPageSize:
    """`page_size` outside 1..max_page_size is the client's 400 (DRF's paginators
    silently fall back to the default, so a typo returned a different page size)."""

    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"Must be an integer from 1 to {self.max_page_size}."]})
        return size


class Pages(StrictPageSize, PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class UsagePages(StrictPageSize, CursorPagination):
    """The ledger grows while it is read: a cursor never skips or repeats rows."""

    ordering = "-created_at"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
