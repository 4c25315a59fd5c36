"""Which route a caller means, and which routes it may see: the routing table read
through its snapshot (no database round trip on the hot path), the admin's own caller
for test calls and dry runs, and /v1/models' body."""

from __future__ import annotations

import orjson

from billing.keys import KeyInfo
from gateway_project.background import spawn
from gateway_project.errors import NotFound

from .catalog import RouteInfo, routing_table
from .health import absorb_health


class _TableWatch:
    """Each refresh of the routing table also picks up probe results written by the
    Celery worker (embedded mode; with Redis the worker feeds breakers itself)."""

    def __init__(self) -> None:
        self.last: object | None = None

    def seen(self, table: object) -> None:
        if table is not self.last:
            self.last = table
            spawn(absorb_health())

    def reset(self) -> None:
        self.last = None


table_watch = _TableWatch()


def no_such_route(name: str) -> NotFound:
    """The one answer for a route that does not exist and for one this key may not use
    (as OpenAI answers for a model the caller has no access to): the same status, code,
    type, param and message, only the name echoed differs; nothing tells them apart."""
    return NotFound(f"The model '{name}' does not exist or you do not have access to it.", param="model")


async def resolve_route(key: KeyInfo, name: str) -> RouteInfo:
    table = await routing_table.get()
    table_watch.seen(table)
    route = table.routes.get(name)
    if route is None:
        # A disabled route is named as such only to a key that may use every route: the
        # table keeps no ids of disabled routes, so a restricted key cannot be told
        # whether it was one of its own, and gets the answer of a route that does not exist.
        if name in table.disabled and not key.allowed_route_ids:
            raise NotFound(f"The route '{name}' is disabled.", param="model", code="route_disabled")
        raise no_such_route(name)
    if not key.may_use(route.id):
        raise no_such_route(name)  # not PermissionDenied: a 403 would confirm that the route exists
    return route


def staff_key(username: str) -> KeyInfo:
    """The caller of the admin's test calls and dry runs: no virtual key, may use every
    route. Usage records get no key id, the key prefix "admin" and no team; global
    budgets still apply."""
    return KeyInfo(
        id=None,
        key_hash="",
        prefix="admin",
        name=f"admin:{username}",
        team_id=None,
        team_name="",
        allowed_route_ids=frozenset(),
        expires_at=None,
        revoked=False,
    )


async def allowed_routes(key: KeyInfo) -> list[RouteInfo]:
    table = await routing_table.get()
    return [r for r in table.routes.values() if key.may_use(r.id)]


def models_body(routes: list[RouteInfo], single: bool = False) -> bytes:
    """GET /v1/models (or /v1/models/{id}) in OpenAI's shape: routes are the models."""
    data = [{"id": r.name, "object": "model", "created": r.created, "owned_by": "gateway"} for r in routes]
    return orjson.dumps(data[0] if single else {"object": "list", "data": data})
