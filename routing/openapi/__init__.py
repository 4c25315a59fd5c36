"""The /v1 API in the OpenAPI schema (drf-spectacular), next to the management API.

/v1 is served by routing.api, a plain ASGI app outside Django; the views here exist
only so the schema generator can document it. `urls` is the schema's URLconf
(settings.SPECTACULAR_SETTINGS["SERVE_URLCONF"]): the site's URLs plus these.
"""
