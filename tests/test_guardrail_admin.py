"""The guardrail admin as a route editor uses it (Django test client, a superuser):
adding a guardrail of each kind through the add form and having bad parameters refused
at the right field, editing, the changelist (scope, inline action/enabled), the
read-only violation log, and the sandbox — which shows findings, the redacted text and
the restored answer, writes nothing, and never fails on odd input."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from guardrails.admin_sandbox import MAX_TEXT
from guardrails.detectors.pii import ENTITIES
from guardrails.kinds.classifier import DEFAULT_PROMPT
from guardrails.models import Guardrail, Violation

from .admin_helpers import untouched_form
from .factories import RouteFactory, TeamFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:guardrails_guardrail_add")
CHANGELIST = reverse("admin:guardrails_guardrail_changelist")
SANDBOX = reverse("admin:guardrails_guardrail_sandbox")

# Obviously fake personal data: a reserved-domain e-mail, a Vietnamese mobile number, a
# Luhn-valid made-up card number, and short uppercase tokens that are not findings.
EMAIL, PHONE, CARD = "an.nguyen@example.com", "0912 345 678", "4539 1488 0343 6467"
PII_TEXT = f"Mail {EMAIL} or call {PHONE}; card {CARD}. Deploy on C4 S3 EKS."


def add_guardrail(client, **fields: str | list[str]):
    """Post the add form as a browser would: the page's defaults, then `fields`
    (an empty list unticks a checkbox group)."""
    data = untouched_form(client.get(ADD))
    for name, value in fields.items():
        data[name] = value if isinstance(value, list) else [value]
    return client.post(ADD, data)


def form_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, "a refused form is shown again, not redirected or failed"
    return {k: list(v) for k, v in response.context["adminform"].form.errors.items()}


def shown_at_field(response, field: str) -> str:
    """The rendered error list of one field's row on the admin page ('' if none)."""
    html = response.content.decode()
    row = re.search(rf'<div class="form-row errors field-{field}">(.*?)</ul>', html, re.S)
    return row.group(1) if row else ""


# --- adding each kind ------------------------------------------------------------------

VALID = [
    ("pii", {"pii__entities": ["email", "phone"], "action": "redact", "restore": "on"},
     {"entities": ["email", "phone"], "stream_hold": "words"}),
    ("secrets", {"action": "block"}, {}),
    ("keywords", {"keywords__words": "Project Falcon\r\n\r\nacme-internal\r\nProject Falcon\r\n"},
     {"words": ["Project Falcon", "acme-internal"]}),
    ("regex", {"regex__patterns": r"PRJ-\d{4}" + "\r\n" + r"falcon-[a-z]+", "regex__entity": "project_code",
               "regex__ignore_case": "on", "action": "redact"},
     {"patterns": [r"PRJ-\d{4}", r"falcon-[a-z]+"], "entity": "project_code", "ignore_case": True}),
    ("max_input_tokens", {"max_input_tokens__max_tokens": "8000", "stage": "input", "action": "block"},
     {"max_tokens": 8000}),
    ("classifier", {"classifier__route": "moderation", "classifier__threshold": "0.8", "stage": "input"},
     {"route": "moderation", "threshold": 0.8, "timeout_s": 5.0, "prompt": DEFAULT_PROMPT}),
]


@pytest.mark.parametrize(("kind", "fields", "params"), VALID, ids=[v[0] for v in VALID])
def test_it_adds_a_guardrail_of_each_kind_and_stores_only_that_kinds_parameters(admin_client, kind, fields, params):
    response = add_guardrail(admin_client, name=f"{kind}-one", kind=kind, **fields)
    assert response.status_code == 302, form_errors(response)
    g = Guardrail.objects.get(name=f"{kind}-one")
    assert g.kind == kind and g.params == params


def test_no_entity_ticked_means_every_pii_entity_as_documented(admin_client):
    response = add_guardrail(admin_client, name="pii-all", kind="pii", pii__entities=[])
    assert response.status_code == 302, form_errors(response)
    assert Guardrail.objects.get(name="pii-all").params == {"entities": list(ENTITIES), "stream_hold": "words"}


# --- refusing bad ones, at the field that is wrong ---------------------------------------

REFUSED = [
    ("regex-broken", {"kind": "regex", "regex__patterns": "PRJ-(\\d+"}, "regex__patterns", "does not compile"),
    ("regex-empty-match", {"kind": "regex", "regex__patterns": "a*"}, "regex__patterns", "matches the empty string"),
    ("regex-no-pattern", {"kind": "regex", "regex__patterns": ""}, "regex__patterns", "required"),
    ("regex-bad-entity", {"kind": "regex", "regex__patterns": "x\\d", "regex__entity": "Project Code!"},
     "regex__entity", "lowercase letters"),
    ("pii-unknown-entity", {"kind": "pii", "pii__entities": ["email", "passport"]}, "pii__entities",
     "passport is not one of the available choices"),
    ("tokens-redact", {"kind": "max_input_tokens", "max_input_tokens__max_tokens": "100", "stage": "input",
                       "action": "redact"}, "action", "cannot redact"),
    ("tokens-none", {"kind": "max_input_tokens", "stage": "input", "action": "block"},
     "max_input_tokens__max_tokens", "required"),
    ("tokens-zero", {"kind": "max_input_tokens", "max_input_tokens__max_tokens": "0", "stage": "input"},
     "max_input_tokens__max_tokens", "greater than or equal to 1"),
    ("classifier-output", {"kind": "classifier", "classifier__route": "moderation", "stage": "output"},
     "stage", "checks stage input only"),
    ("classifier-no-route", {"kind": "classifier", "stage": "input"}, "classifier__route", "required"),
    ("restore-block", {"kind": "pii", "action": "block", "restore": "on"}, "restore", "redact action only"),
    ("keywords-none", {"kind": "keywords", "keywords__words": ""}, "keywords__words", "required"),
    ("keywords-blank-lines", {"kind": "keywords", "keywords__words": "\r\n   \r\n"}, "keywords__words",
     "at least one item"),
    ("no-kind", {"kind": ""}, "kind", "required"),
]


@pytest.mark.parametrize(("name", "fields", "field", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_it_refuses_bad_settings_at_the_field_that_is_wrong(admin_client, name, fields, field, message):
    response = add_guardrail(admin_client, name=name, **fields)
    errors = form_errors(response)
    assert field in errors, errors
    assert message in " ".join(errors[field]), errors
    assert message in shown_at_field(response, field)  # on the page, in that field's row
    assert not Guardrail.objects.exists()


def test_a_refused_form_keeps_what_was_typed(admin_client):
    response = add_guardrail(admin_client, name="regex-broken", kind="regex", regex__patterns="ok\\d\r\nPRJ-(\\d+")
    assert response.context["adminform"].form["regex__patterns"].value() == "ok\\d\r\nPRJ-(\\d+"


# --- editing -------------------------------------------------------------------------------

def test_editing_shows_the_stored_parameters_and_saving_untouched_keeps_them(admin_client):
    g = Guardrail.objects.create(name="codes", kind="regex", action="redact",
                                 params={"patterns": [r"PRJ-\d{4}", r"x\d"], "entity": "project_code",
                                         "ignore_case": True})
    url = reverse("admin:guardrails_guardrail_change", args=[g.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    assert form["regex__patterns"].value() == "PRJ-\\d{4}\nx\\d"
    assert form["regex__entity"].value() == "project_code"
    assert form["regex__ignore_case"].value() is True
    assert "Try in the sandbox" in page.content.decode() and f"?guardrail={g.pk}" in page.content.decode()

    response = admin_client.post(url, untouched_form(page))
    assert response.status_code == 302, form_errors(response)
    g.refresh_from_db()
    assert g.params == {"patterns": [r"PRJ-\d{4}", r"x\d"], "entity": "project_code", "ignore_case": True}


def test_editing_a_pii_guardrail_ticks_only_its_entities(admin_client):
    g = Guardrail.objects.create(name="mails", kind="pii", params={"entities": ["email", "iban"]})
    page = admin_client.get(reverse("admin:guardrails_guardrail_change", args=[g.pk]))
    assert untouched_form(page)["pii__entities"] == ["email", "iban"]


def test_changing_the_kind_replaces_the_parameters(admin_client):
    g = Guardrail.objects.create(name="swap", kind="keywords", params={"words": ["falcon"]})
    url = reverse("admin:guardrails_guardrail_change", args=[g.pk])
    data = untouched_form(admin_client.get(url))
    data.update(kind=["max_input_tokens"], stage=["input"], action=["block"], max_input_tokens__max_tokens=["50"])
    assert admin_client.post(url, data).status_code == 302
    g.refresh_from_db()
    assert (g.kind, g.params) == ("max_input_tokens", {"max_tokens": 50})


def test_editing_a_guardrail_whose_stored_parameters_are_broken_shows_the_error_and_lets_it_be_fixed(admin_client):
    g = Guardrail.objects.create(name="broken", kind="regex", params={"patterns": ["("], "bogus": 1})
    url = reverse("admin:guardrails_guardrail_change", args=[g.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    data = untouched_form(page)
    assert form_errors(admin_client.post(url, data))  # refused as stored, not a server error
    data["regex__patterns"] = ["fixed\\d"]
    assert admin_client.post(url, data).status_code == 302
    g.refresh_from_db()
    assert g.params["patterns"] == ["fixed\\d"] and "bogus" not in g.params


# --- changelist -----------------------------------------------------------------------------

def test_the_changelist_summarises_each_guardrails_scope(admin_client):
    Guardrail.objects.create(name="everywhere", kind="secrets")
    scoped = Guardrail.objects.create(name="scoped", kind="secrets")
    scoped.routes.add(RouteFactory(name="chat-eu"))
    scoped.teams.add(*(TeamFactory(name=f"team-{i}") for i in range(5)))
    html = admin_client.get(CHANGELIST).content.decode()
    assert "global" in html
    assert "routes: chat-eu; teams: team-0, team-1, team-2 +2" in html
    assert "Sandbox: try guardrails on a text" in html


def test_the_changelist_switches_flag_to_block_inline(admin_client):
    g = Guardrail.objects.create(name="watch", kind="keywords", params={"words": ["falcon"]})
    page = admin_client.get(CHANGELIST)
    data = untouched_form(page)
    assert data["form-0-action"] == ["flag"] and data["form-0-enabled"] == ["on"]
    data.update({"form-0-action": ["block"], "_save": ["Save"]})
    del data["form-0-enabled"]  # unticked
    response = admin_client.post(CHANGELIST, data)
    assert response.status_code == 302
    g.refresh_from_db()
    assert (g.action, g.enabled) == ("block", False)


def test_the_changelist_refuses_an_inline_action_the_kind_cannot_do_without_failing(admin_client):
    g = Guardrail.objects.create(name="limit", kind="max_input_tokens", stage="input", action="block",
                                 params={"max_tokens": 10})
    data = untouched_form(admin_client.get(CHANGELIST))
    data.update({"form-0-action": ["redact"], "_save": ["Save"]})
    response = admin_client.post(CHANGELIST, data)
    assert response.status_code == 200
    assert "cannot redact" in response.content.decode()
    g.refresh_from_db()
    assert g.action == "block"


def test_the_changelist_refuses_block_on_a_restoring_guardrail_without_failing(admin_client):
    g = Guardrail.objects.create(name="pii", kind="pii", action="redact", restore=True)
    data = untouched_form(admin_client.get(CHANGELIST))
    data.update({"form-0-action": ["block"], "_save": ["Save"]})
    response = admin_client.post(CHANGELIST, data)
    assert response.status_code == 200
    assert "Restore applies to the redact action only" in response.content.decode()
    g.refresh_from_db()
    assert g.action == "redact"


def test_the_changelist_renders_and_saves_beside_a_guardrail_with_broken_parameters(admin_client):
    Guardrail.objects.create(name="a-broken", kind="regex", params={"patterns": ["("]})
    ok = Guardrail.objects.create(name="b-ok", kind="keywords", params={"words": ["falcon"]})
    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200
    data = untouched_form(page)
    row = next(k.removesuffix("-id") for k, v in data.items() if k.endswith("-id") and v == [str(ok.pk)])
    data.update({f"{row}-action": ["block"], "_save": ["Save"]})
    assert admin_client.post(CHANGELIST, data).status_code == 302
    ok.refresh_from_db()
    assert ok.action == "block"


# --- the violation log ------------------------------------------------------------------------

def test_the_violation_log_is_read_only_and_shows_entity_counts(admin_client):
    v = Violation.objects.create(guardrail_name="pii-default", stage="input", action="redact", outcome="redacted",
                                 request_id="req-1", entities={"phone": 1, "email": 2}, key_prefix="gw-abc")
    html = admin_client.get(reverse("admin:guardrails_violation_changelist")).content.decode()
    assert "email ×2, phone ×1" in html
    assert reverse("admin:guardrails_violation_add") not in html
    assert admin_client.get(reverse("admin:guardrails_violation_add")).status_code == 403

    change = reverse("admin:guardrails_violation_change", args=[v.pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    response = admin_client.post(change, {"guardrail_name": "edited", "outcome": "blocked"})
    assert response.status_code == 403
    v.refresh_from_db()
    assert (v.guardrail_name, v.outcome) == ("pii-default", "redacted")


# --- the sandbox --------------------------------------------------------------------------------

def sandbox(client, text: str, *guardrails: Guardrail, direction: str = "input"):
    return client.post(SANDBOX, {"text": text, "guardrails": [g.pk for g in guardrails], "direction": direction})


def test_the_sandbox_renders_with_every_guardrail_offered(admin_client):
    Guardrail.objects.create(name="on", kind="secrets")
    off = Guardrail.objects.create(name="off", kind="secrets", enabled=False)
    page = admin_client.get(SANDBOX, {"guardrail": off.pk})
    assert page.status_code == 200
    assert untouched_form(page)["guardrails"] == [str(off.pk)]  # preselected from the guardrail's page
    assert {str(g) for g in page.context["form"].fields["guardrails"].queryset} == {"on", "off"}
    html = page.content.decode()
    assert "on (secrets, flag)</label>" in html and "off (secrets, flag, switched off)</label>" in html


def test_the_sandbox_shows_pii_findings_redacted_text_and_restored_answer(admin_client):
    pii = Guardrail.objects.create(name="pii-default", kind="pii", action="redact", restore=True)
    response = sandbox(admin_client, PII_TEXT, pii)
    assert response.status_code == 200
    result = response.context["result"]
    (row,) = result["rows"]
    assert row["outcome"] == "redacted" and not row["error"]
    assert [(e, t) for e, t, _ in row["findings"]] == [("email", EMAIL), ("phone", PHONE), ("credit_card", CARD)]
    assert result["sent"] == "Mail [EMAIL_1] or call [PHONE_1]; card [CREDIT_CARD_1]. Deploy on C4 S3 EKS."
    assert result["answer"] == PII_TEXT

    html = response.content.decode()
    assert "Findings: email ×1, phone ×1, credit_card ×1" in html
    assert f"<code>{EMAIL}</code> at 5" in html
    assert "[EMAIL_1]" in html and "[PHONE_1]" in html and "[CREDIT_CARD_1]" in html
    for token in ("C4", "S3", "EKS"):
        assert f"<code>{token}</code>" not in html


def test_the_sandbox_restores_placeholders_in_an_answer(admin_client):
    pii = Guardrail.objects.create(name="pii-default", kind="pii", action="redact", restore=True)
    result = sandbox(admin_client, f"Write to {EMAIL}.", pii, direction="output").context["result"]
    assert result["rows"][0]["outcome"] == "redacted"
    assert result["answer"] == "Write to [EMAIL_1]."  # an answer's own data is redacted for the client


def test_the_sandbox_tries_a_switched_off_guardrail(admin_client):
    off = Guardrail.objects.create(name="falcon", kind="keywords", enabled=False, action="redact",
                                   params={"words": ["project falcon"]})
    result = sandbox(admin_client, "Status of Project Falcon?", off).context["result"]
    assert result["rows"][0]["findings"] == [("keyword", "Project Falcon", 10)]
    assert result["sent"] == "Status of [KEYWORD_1]?"


def test_the_sandbox_names_the_blocking_guardrail(admin_client):
    block = Guardrail.objects.create(name="no-falcon", kind="keywords", action="block",
                                     params={"words": ["project falcon"]})
    pii = Guardrail.objects.create(name="pii-default", kind="pii", action="redact")
    response = sandbox(admin_client, f"Project Falcon status to {EMAIL}", block, pii)
    assert response.context["result"]["blocked"] == "no-falcon"
    html = response.content.decode()
    assert "Blocked by no-falcon" in html
    assert 'id="sandbox-sent"' not in html  # nothing would be sent


def test_the_sandbox_writes_nothing(admin_client):
    rails = [Guardrail.objects.create(name="pii", kind="pii", action="redact"),
             Guardrail.objects.create(name="block", kind="keywords", action="block", params={"words": ["falcon"]}),
             Guardrail.objects.create(name="shadow", kind="secrets", action="flag")]
    before = {g.pk: (g.updated_at, g.params) for g in Guardrail.objects.all()}
    for direction in ("input", "output"):
        assert sandbox(admin_client, f"falcon {EMAIL}", *rails, direction=direction).status_code == 200
    assert not Violation.objects.exists()
    assert {g.pk: (g.updated_at, g.params) for g in Guardrail.objects.all()} == before


def test_the_sandbox_does_not_run_a_classifier_and_says_so(admin_client):
    judge = Guardrail.objects.create(name="judge", kind="classifier", stage="input", action="block",
                                     params={"route": "moderation"})
    response = sandbox(admin_client, "hello", judge)
    assert response.status_code == 200
    row = response.context["result"]["rows"][0]
    assert row["outcome"] == "not run" and "not run in the sandbox" in row["error"]
    assert response.context["result"]["blocked"] == ""


def test_the_sandbox_says_when_a_guardrail_is_not_on_the_chosen_side(admin_client):
    tokens = Guardrail.objects.create(name="tokens", kind="max_input_tokens", stage="input", action="block",
                                      params={"max_tokens": 1})
    result = sandbox(admin_client, "a long enough prompt", tokens, direction="output").context["result"]
    assert result["rows"][0]["outcome"] == "not on this side" and result["blocked"] == ""
    result = sandbox(admin_client, "a long enough prompt", tokens).context["result"]
    assert result["blocked"] == "tokens"


# --- the sandbox never fails on odd input --------------------------------------------------------

def test_the_sandbox_asks_for_a_guardrail_when_none_is_ticked(admin_client):
    response = admin_client.post(SANDBOX, {"text": "hello", "direction": "input"})
    assert response.status_code == 200 and response.context["result"] is None
    assert "guardrails" in response.context["form"].errors


def test_an_empty_post_shows_the_empty_sandbox(admin_client):
    response = admin_client.post(SANDBOX, {})
    assert response.status_code == 200 and response.context["result"] is None


@pytest.mark.parametrize("data", [
    {"text": "", "guardrails": [], "direction": "input"},
    {"text": "hi", "guardrails": ["not-a-number"], "direction": "input"},
    {"text": "hi", "guardrails": ["999999"], "direction": "input"},
    {"text": "hi", "guardrails": ["1"], "direction": "sideways"},
    {"text": "nul \x00 byte", "guardrails": ["1"], "direction": "input"},
    {"text": "x" * (MAX_TEXT + 1), "guardrails": ["1"], "direction": "input"},
], ids=["empty", "bad-id", "unknown-id", "bad-direction", "nul-byte", "too-long"])
def test_the_sandbox_shows_form_errors_for_odd_posts(admin_client, data):
    response = admin_client.post(SANDBOX, data)
    assert response.status_code == 200 and response.context["result"] is None
    assert response.context["form"].errors


def test_the_sandbox_ignores_an_odd_guardrail_query_parameter(admin_client):
    for value in ("999999", "abc", "-1", "1" * 40):
        assert admin_client.get(SANDBOX, {"guardrail": value}).status_code == 200


@pytest.mark.parametrize("direction", ["input", "output"])
def test_the_sandbox_takes_a_text_up_to_its_limit(admin_client, direction):
    rails = [Guardrail.objects.create(name="pii", kind="pii", action="redact", restore=True),
             Guardrail.objects.create(name="words", kind="keywords", action="redact", params={"words": ["falcon"]}),
             Guardrail.objects.create(name="codes", kind="regex", action="flag", params={"patterns": [r"PRJ-\d+"]}),
             Guardrail.objects.create(name="secrets", kind="secrets", action="flag")]
    line = f"falcon {EMAIL} PRJ-42 {PHONE} "
    text = (line * (MAX_TEXT // len(line) + 1))[:MAX_TEXT]
    response = sandbox(admin_client, text, *rails, direction=direction)
    assert response.status_code == 200
    counts = response.context["result"]["counts"]
    assert counts["keyword"] == text.count("falcon") and counts["email"] >= text.count(EMAIL)


def test_the_sandbox_survives_a_guardrail_with_broken_stored_parameters(admin_client):
    broken = [
        Guardrail.objects.create(name="bad-regex", kind="regex", on_error="block", params={"patterns": ["("]}),
        Guardrail.objects.create(name="bad-words", kind="keywords", on_error="allow", params={"words": [1, 2]}),
        Guardrail.objects.create(name="bad-shape", kind="pii", params=["not", "a", "mapping"]),
        Guardrail.objects.create(name="bad-kind", kind="no-such-kind", params={}),
    ]
    fine = Guardrail.objects.create(name="fine", kind="pii", action="redact")
    for direction in ("input", "output"):
        response = sandbox(admin_client, f"mail {EMAIL}", *broken, fine, direction=direction)
        assert response.status_code == 200
        rows = {r["guardrail"].name: r for r in response.context["result"]["rows"]}
        assert rows["bad-regex"]["error"].startswith("invalid parameters")
        assert rows["bad-kind"]["error"] == "unknown kind 'no-such-kind'"
        # Fails closed as configured; the first in order (order, then name) names the block.
        assert response.context["result"]["blocked"] == "bad-kind"
        assert rows["bad-words"]["outcome"] == "error_allowed"
    assert not Violation.objects.exists()
