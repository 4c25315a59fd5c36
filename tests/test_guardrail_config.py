"""Config as code, guardrails: the issue's YAML contract imports, exports and
re-imports to the same state; every bad value is refused with its path."""

from __future__ import annotations

import pytest

from guardrails.models import Guardrail
from routing.config import ConfigError, dump_config, export_config, import_config, load_config_text
from tests.factories import RouteFactory, TeamFactory

pytestmark = pytest.mark.django_db

CONTRACT = """
guardrails:
  - name: pii-default
    kind: pii
    stage: both
    action: redact
    entities: [email, phone, credit_card, iban, us_ssn, vn_cccd, vn_cmnd, ip_address]
    restore: true
    scope: {routes: [chat-default]}
  - name: no-secrets
    kind: secrets
    stage: input
    action: block
  - name: banned-words
    kind: keywords
    stage: both
    action: block
    words: [project-nightingale]
"""


def test_the_contract_document_imports_and_round_trips():
    RouteFactory(name="chat-default", enabled=False)  # no targets: a valid route must be off
    report = import_config(load_config_text(CONTRACT))
    assert report.count("created", "guardrail") == 3
    pii = Guardrail.objects.get(name="pii-default")
    assert (pii.kind, pii.stage, pii.action, pii.on_error, pii.restore) == ("pii", "both", "redact", "block", True)
    assert pii.params["entities"][:2] == ["email", "phone"]
    assert [r.name for r in pii.routes.all()] == ["chat-default"]
    assert Guardrail.objects.get(name="no-secrets").on_error == "block"  # fail closed by default
    exported = export_config()
    again = import_config(load_config_text(dump_config(exported)))
    assert not again.changed
    assert export_config() == exported


def test_scope_by_team_and_key_prefix():
    from billing.keys import issue_key

    TeamFactory(name="legal")
    issued = issue_key("svc")
    doc = f"""
guardrails:
  - name: g
    kind: keywords
    words: [x]
    scope: {{teams: [legal], keys: [{issued.key.prefix}]}}
"""
    import_config(load_config_text(doc))
    g = Guardrail.objects.get()
    assert [t.name for t in g.teams.all()] == ["legal"] and g.keys.get().pk == issued.key.pk


@pytest.mark.parametrize(("doc", "path", "message"), [
    ("- {name: g, kind: pii, entities: [email, passport]}", "guardrails[g].entities", "unknown value 'passport'"),
    ("- {name: g, kind: regex, patterns: ['(unclosed']}", "guardrails[g].patterns", "does not compile"),
    ("- {name: g, kind: keywords}", "guardrails[g].words", "required"),
    ("- {name: g, kind: keywords, words: [a], wrods: [b]}", "guardrails[g].wrods", "did you mean 'words'"),
    ("- {name: g, kind: piii}", "guardrails[g].kind", "did you mean 'pii'"),
    ("- {name: g, kind: keywords, words: [a], action: redcat}", "guardrails[g].action", "unknown action"),
    ("- {name: g, kind: max_input_tokens, max_tokens: 10, action: redact, stage: input}", "guardrails[g].action",
     "cannot redact"),
    ("- {name: g, kind: classifier, route: mod, stage: output, action: block}", "guardrails[g].stage",
     "stage input only"),
    ("- {name: g, kind: keywords, words: [a], scope: {routes: [nope]}}", "guardrails[g].scope.routes",
     "unknown route 'nope'"),
    ("- {name: g, kind: keywords, words: [a], restore: true, action: block}", "guardrails[g].restore",
     "redact action only"),
])
def test_bad_guardrails_are_refused_with_their_path(doc, path, message):
    with pytest.raises(ConfigError) as caught:
        import_config(load_config_text("guardrails:\n  " + doc))
    assert any(p == path and message in m for p, m in caught.value.errors), caught.value.errors
    assert not Guardrail.objects.exists()


def test_prune_deletes_guardrails_absent_from_the_file():
    import_config(load_config_text(CONTRACT.replace("    scope: {routes: [chat-default]}\n", "")))
    report = import_config(load_config_text("guardrails:\n  - {name: banned-words, kind: keywords, words: [x]}"),
                           prune=True)
    assert list(Guardrail.objects.values_list("name", flat=True)) == ["banned-words"]
    assert report.count("deleted", "guardrail") == 2
