"""Who may use the management API: staff users holding the permission each call
needs, by DRF token or admin session.

Tokens are DRF's (`rest_framework.authtoken`): create one for a staff user in the
admin (Auth Token -> Tokens) or with `manage.py drf_create_token USERNAME`, and send
it as `Authorization: Token <token>`. TokenAuthentication comes first so an
anonymous request gets 401 with `WWW-Authenticate: Token`.

The API enforces the admin's roles (gateway_admin.roles, docs/security/roles.md) with
the admin's own permissions: a model-backed call needs the model permission of its
method (GET -> view, POST -> add, PATCH/PUT -> change, DELETE -> delete), and an
action that is not plain CRUD needs the permission declared for it in
ACTION_PERMISSIONS (rotating or revoking a key is changing it, as in the admin). A
call whose permission is not declared is refused for everyone. A user who is
inactive, not staff or without the permission gets 403 `{"detail": ...}` naming
what is missing. Superusers hold every permission.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission

AUTHENTICATION = [TokenAuthentication, SessionAuthentication]

# A viewset's standard actions, and the model permission each needs.
CRUD_ACTIONS = {
    "list": "view", "retrieve": "view", "metadata": "view",
    "create": "add", "update": "change", "partial_update": "change", "destroy": "delete",
}
# A plain APIView's methods (a model-backed view that is not a viewset).
METHOD_ACTIONS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PUT": "change",
                  "PATCH": "change", "DELETE": "delete"}
# (model label, action) -> the permissions it needs instead of CRUD_ACTIONS' (actions
# of the model's app unless dotted). Every other custom action is refused.
ACTION_PERMISSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("billing.virtualkey", "destroy"): ("change_virtualkey",),  # DELETE revokes; keys are never deleted
    ("billing.virtualkey", "revoke"): ("change_virtualkey",),
    ("billing.virtualkey", "rotate"): ("change_virtualkey",),
}
# Fields of a request body that write another model than the view's: (model label,
# action, field) -> the extra permissions a body with that field needs.
FIELD_PERMISSIONS: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("billing.virtualkey", "create", "budget"): ("billing.add_budget",),  # issuing a key with its budget
}


def view_model(view):
    """The model a management view works on: its queryset's, else its serializer's."""
    queryset = getattr(view, "queryset", None)
    if queryset is not None:
        return queryset.model
    serializer = getattr(view, "serializer_class", None)
    meta = getattr(serializer, "Meta", None)
    return getattr(meta, "model", None)


def required_permissions(request, view) -> tuple[str, ...] | None:
    """The "app_label.codename" permissions this call needs; None: none is declared."""
    explicit = getattr(view, "required_permissions", None)  # a view that is not model-backed
    if explicit is not None:
        return tuple(explicit)
    model = view_model(view)
    if model is None:
        return None
    opts = model._meta
    label = f"{opts.app_label}.{opts.model_name}"
    if not hasattr(view, "action_map"):  # not a viewset: by method
        if request.method not in METHOD_ACTIONS:
            return None
        perms = (f"{METHOD_ACTIONS[request.method]}_{opts.model_name}",)
    elif not view.action:
        # A method this viewset has no action for: those who may read it learn it
        # is not allowed (405), others get 403.
        perms = (f"view_{opts.model_name}",)
    elif (label, view.action) in ACTION_PERMISSIONS:
        perms = ACTION_PERMISSIONS[(label, view.action)]
    elif view.action in CRUD_ACTIONS:
        perms = (f"{CRUD_ACTIONS[view.action]}_{opts.model_name}",)
    else:
        return None
    return tuple(p if "." in p else f"{opts.app_label}.{p}" for p in perms)


class HasRolePermission(BasePermission):
    """Active staff users holding the call's permissions (the admin's, by role)."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False  # DRF answers 401 with WWW-Authenticate (TokenAuthentication)
        if not user.is_active or not user.is_staff:
            self.message = "Only active staff users may use the management API."
            return False
        needed = required_permissions(request, view)
        if needed is None:
            self.message = "No permission is declared for this call, so it is refused (billing.api.permissions)."
            return False
        if not self._holds(user, needed):
            return False
        extra = self._field_permissions(request, view)
        return not extra or self._holds(user, extra)

    def _holds(self, user, needed: tuple[str, ...]) -> bool:
        missing = [p for p in needed if not user.has_perm(p)]
        if missing:
            self.message = f"You do not have permission to perform this action: it needs {', '.join(missing)}."
        return not missing

    @staticmethod
    def _field_permissions(request, view) -> tuple[str, ...]:
        model = view_model(view)
        if model is None or not FIELD_PERMISSIONS:
            return ()
        label, action = f"{model._meta.app_label}.{model._meta.model_name}", getattr(view, "action", None)
        fields = [f for (m, a, f) in FIELD_PERMISSIONS if (m, a) == (label, action)]
        if not fields:
            return ()
        data = request.data  # parsed once; a body that does not parse is the client's 400
        if not isinstance(data, Mapping):
            return ()
        return tuple(p for f in fields if f in data for p in FIELD_PERMISSIONS[(label, action, f)])


PERMISSIONS = [HasRolePermission]


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
