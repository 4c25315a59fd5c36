"""The answer cache's parts (the stage that uses them is routing.stages.cache):

    policy     a route's cache policy and the cacheability rules
    keys       cache keys: hashes of route, tenant and the normalised request
    entry      a stored answer's format
    store      where answers live (Redis, or an in-process LRU bounded by bytes)
    coalesce   identical requests in flight share one upstream call
    semantic   embeddings, the look-alike guard and the vector indexes (optional extra)
    purge      a route's "purge the cache" (admin action, config import)
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("gateway.cache")

_unavailable_logged = False


def semantic_index() -> Any | None:
    """The process-wide semantic index, or None when the embedding extra is not
    installed (semantic routes then cache exactly; logged once, shown in the admin)."""
    global _unavailable_logged
    try:
        from . import semantic
    except ImportError as exc:  # the optional extra is missing
        if not _unavailable_logged:
            _unavailable_logged = True
            log.warning("semantic cache unavailable (%s): semantic routes cache exact requests only", exc)
        return None
    available = getattr(semantic, "semantic_available", None)
    ok, why = available() if available is not None else (False, "routing.cache.semantic is incomplete")
    if not ok:
        if not _unavailable_logged:
            _unavailable_logged = True
            log.warning("semantic cache unavailable (%s): semantic routes cache exact requests only", why)
        return None
    return semantic.get_semantic_index()


def default_threshold() -> float:
    try:
        from .semantic import DEFAULT_THRESHOLD
    except (ImportError, AttributeError):
        return 0.9
    return DEFAULT_THRESHOLD
