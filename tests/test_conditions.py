"""The conditional strategy's rule language (routing/conditions.py): parsing and evaluation."""

from __future__ import annotations

import pytest

from providers.types import ChatRequest
from routing.conditions import Clause, ConditionError, Rule, parse_clause, parse_rules


def rule(when: str, targets=("openai/gpt-4o",)) -> Rule:
    [parsed] = parse_rules([{"when": when, "targets": list(targets)}])
    return parsed


def request(text: str = "hello", **kw) -> ChatRequest:
    return ChatRequest(model="chat", messages=[{"role": "user", "content": text}], **kw)


def holds(when: str, req: ChatRequest) -> bool:
    return rule(when).matches(req)


def parse_error(rules) -> str:
    with pytest.raises(ConditionError) as info:
        parse_rules(rules)
    return str(info.value)


# --- parsing: accepted forms -------------------------------------------------------------
@pytest.mark.parametrize(
    "text, field, op, value",
    [
        ("metadata.tier == 'premium'", "metadata.tier", "==", "premium"),
        ('metadata.tier == "premium"', "metadata.tier", "==", "premium"),
        ("metadata.note == 'say \"hi\"'", "metadata.note", "==", 'say "hi"'),
        ("metadata.tier != ''", "metadata.tier", "!=", ""),
        ("max_tokens > 2000", "max_tokens", ">", 2000),
        ("max_tokens>2000", "max_tokens", ">", 2000),
        ("temperature <= 0.5", "temperature", "<=", 0.5),
        ("top_p < 1", "top_p", "<", 1),
        ("messages >= 3", "messages", ">=", 3),
        ("prompt_tokens < -1", "prompt_tokens", "<", -1),
        ("stream == true", "stream", "==", True),
        ("stream != false", "stream", "!=", False),
        ("params.seed == null", "params.seed", "==", None),
        ('metadata.region in ["eu", "uk"]', "metadata.region", "in", ["eu", "uk"]),
        ('metadata.region not in ["us"]', "metadata.region", "not in", ["us"]),
        ("metadata.level in [1, 2.5, true]", "metadata.level", "in", [1, 2.5, True]),
        ("metadata.tags contains 'beta'", "metadata.tags", "contains", "beta"),
        ("params.response_format exists", "params.response_format", "exists", None),
        ("  user == 'alice'  ", "user", "==", "alice"),
        ("model == 'chat'", "model", "==", "chat"),
        ("tools > 0", "tools", ">", 0),
        ("metadata.a-b_c == 1", "metadata.a-b_c", "==", 1),
    ],
)
def test_parse_clause_accepts_documented_forms(text, field, op, value):
    clause = parse_clause(text)
    assert clause == Clause(field, op, value)
    assert type(clause.value) is type(value)  # 1 stays int, true stays bool


def test_parse_rules_splits_clauses_on_and():
    parsed = rule("metadata.tier == 'premium'  and max_tokens > 2000 and stream exists", ["a/b", "c/d"])
    assert parsed.text == "metadata.tier == 'premium'  and max_tokens > 2000 and stream exists"
    assert parsed.clauses == (
        Clause("metadata.tier", "==", "premium"),
        Clause("max_tokens", ">", 2000),
        Clause("stream", "exists"),
    )
    assert parsed.targets == ("a/b", "c/d")


def test_parse_rules_keeps_rule_order_and_strips_the_text():
    parsed = parse_rules([
        {"when": "  max_tokens > 1 ", "targets": ["a/b"]},
        {"targets": ["c/d"], "when": "stream == true"},
    ])
    assert [r.text for r in parsed] == ["max_tokens > 1", "stream == true"]
    assert [r.targets for r in parsed] == [("a/b",), ("c/d",)]
    assert parse_rules([]) == []


# --- parsing: rejected forms -------------------------------------------------------------
@pytest.mark.parametrize(
    "when, expected",
    [
        ("bogus == 1", "unknown field 'bogus'"),
        ("metadata == 'x'", "unknown field 'metadata'"),
        ("params. == 1", "unknown field 'params.'"),
        ("max_tokens => 5", "cannot read 'max_tokens => 5'"),
        ("metadata.tier = 'x'", "cannot read \"metadata.tier = 'x'\""),
        ("metadata.tier is 'x'", "cannot read \"metadata.tier is 'x'\""),
        ("metadata.tier", "cannot read 'metadata.tier'"),
        ("metadata.tier == premium", "'premium' is not a value: quote text"),
        ("metadata.tier == 'premium", "is not a value"),
        ('metadata.tier in "gold"', "'in' needs a list"),
        ("metadata.tier not in 'gold'", "'not in' needs a list"),
        ("max_tokens > 1 and bogus exists", "unknown field 'bogus'"),
    ],
)
def test_parse_rules_rejects_bad_clauses_naming_the_rule(when, expected):
    message = parse_error([{"when": "max_tokens > 1", "targets": ["a/b"]}, {"when": when, "targets": ["a/b"]}])
    assert message.startswith("rule 2: ")
    assert expected in message


def test_unknown_field_error_lists_the_known_fields():
    message = parse_error([{"when": "tokens > 5", "targets": ["a/b"]}])
    assert "metadata.<name>" in message and "params.<name>" in message and "prompt_tokens" in message


@pytest.mark.parametrize(
    "bad, expected",
    [
        ({"when": "max_tokens > 1"}, "'targets' must be a non-empty list"),
        ({"when": "max_tokens > 1", "targets": []}, "'targets' must be a non-empty list"),
        ({"when": "max_tokens > 1", "targets": "a/b"}, "'targets' must be a non-empty list"),
        ({"when": "max_tokens > 1", "targets": ["a/b", 3]}, "'targets' must be a non-empty list"),
        ({"targets": ["a/b"]}, "'when' must be a condition"),
        ({"when": "   ", "targets": ["a/b"]}, "'when' must be a condition"),
        ({"when": 5, "targets": ["a/b"]}, "'when' must be a condition"),
        ({"when": "max_tokens > 1", "targets": ["a/b"], "priority": 1}, "unknown key 'priority'"),
        ("max_tokens > 1", 'expected {"when": '),
    ],
    ids=[
        "no-targets", "empty-targets", "targets-string", "targets-non-string",
        "no-when", "blank-when", "when-number", "extra-key", "not-a-dict",
    ],
)  # fmt: skip
def test_parse_rules_rejects_bad_rule_shapes_naming_the_rule(bad, expected):
    ok = {"when": "max_tokens > 1", "targets": ["a/b"]}
    message = parse_error([ok, ok, bad])
    assert message.startswith("rule 3: ")
    assert expected in message


def test_parse_rules_needs_a_list():
    assert parse_error({"when": "max_tokens > 1", "targets": ["a/b"]}) == "rules must be a list"


def test_condition_error_is_a_value_error():
    assert issubclass(ConditionError, ValueError)


def test_extra_key_error_names_the_key():
    assert "priority" in parse_error([{"when": "max_tokens > 1", "targets": ["a/b"], "priority": 1}])


def test_and_inside_a_quoted_value_is_part_of_the_value():
    assert rule("metadata.team == 'research and development'").clauses == (
        Clause("metadata.team", "==", "research and development"),
    )


def test_single_quoted_strings_inside_a_list():
    assert rule("metadata.tier in ['gold', 'silver']").clauses == (Clause("metadata.tier", "in", ["gold", "silver"]),)


def test_a_clause_without_an_operator_is_rejected():
    # Read today as `metadata.doma in ["x"]`: a silent misparse, not an error.
    with pytest.raises(ConditionError):
        parse_rules([{"when": 'metadata.domain ["x"]', "targets": ["a/b"]}])


# --- evaluation --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "when",
    [
        "metadata.tier == 'x'", "metadata.tier != 'x'", "metadata.tier > 1", "metadata.tier <= 1",
        'metadata.tier in ["x"]', 'metadata.tier not in ["x"]', "metadata.tier contains 'x'",
        "params.seed != 1", "max_tokens != 5", "temperature < 1", "top_p >= 0", "user != 'bob'",
    ],
)  # fmt: skip
def test_missing_fields_never_match(when):
    assert not holds(when, request(metadata={"other": "x"}, params={"other": 1}))


@pytest.mark.parametrize(
    "when, req, expected",
    [
        ("metadata.tier exists", request(metadata={"tier": "gold"}), True),
        ("metadata.tier exists", request(metadata={"tier": 0}), True),
        ("metadata.tier exists", request(metadata={"other": "gold"}), False),
        ("params.response_format exists", request(params={"response_format": {"type": "json_object"}}), True),
        ("params.response_format exists", request(), False),
        ("max_tokens exists", request(max_tokens=100), True),
        ("max_tokens exists", request(), False),
        ("user exists", request(params={"user": "alice"}), True),
        ("user exists", request(), False),
    ],
)
def test_exists_matches_present_fields_only(when, req, expected):
    assert holds(when, req) is expected


@pytest.mark.parametrize(
    "when, metadata",
    [
        ("metadata.tier > 3", {"tier": "gold"}),
        ("metadata.tier < 'b'", {"tier": 3}),
        ("metadata.tier == 3", {"tier": "3"}),
        ("metadata.tier contains 'x'", {"tier": 5}),
        ("metadata.tier contains 3", {"tier": "abc3"}),
        ("metadata.tier contains [1]", {"tier": {"a": 1}}),
        ('metadata.tier in ["a"]', {"tier": {"a": 1}}),
        ("metadata.tier >= 1", {"tier": None}),
    ],
)
def test_type_mismatches_are_non_matches_not_errors(when, metadata):
    assert holds(when, request(metadata=metadata)) is False


def test_booleans_and_numbers_do_not_match_each_other():
    assert not holds("metadata.beta == true", request(metadata={"beta": 1}))
    assert not holds("metadata.count == 1", request(metadata={"count": True}))


@pytest.mark.parametrize(
    "value, expected",
    [("open beta plan", True), ("basic", False), (["beta", "eu"], True), (["betas"], False), ({"beta": 1}, True)],
)
def test_contains_on_strings_lists_and_dicts(value, expected):
    assert holds("metadata.tags contains 'beta'", request(metadata={"tags": value})) is expected


@pytest.mark.parametrize(
    "when, metadata, expected",
    [
        ("metadata.tier == 'gold'", {"tier": "gold"}, True),
        ("metadata.tier == 'gold'", {"tier": "Gold"}, False),
        ("metadata.tier != 'gold'", {"tier": "silver"}, True),
        ('metadata.tier in ["gold", "silver"]', {"tier": "silver"}, True),
        ('metadata.tier in ["gold", "silver"]', {"tier": "bronze"}, False),
        ('metadata.tier not in ["gold"]', {"tier": "bronze"}, True),
        ('metadata.tier not in ["gold"]', {"tier": "gold"}, False),
        ("metadata.score >= 0.5", {"score": 0.5}, True),
        ("metadata.score > 0.5", {"score": 0.5}, False),
        ("metadata.score < 10", {"score": 9}, True),
        ("metadata.score <= 9", {"score": 10}, False),
    ],
)
def test_comparison_operators(when, metadata, expected):
    assert holds(when, request(metadata=metadata)) is expected


TOOLS = [{"type": "function", "function": {"name": n}} for n in ("a", "b", "c")]


@pytest.mark.parametrize(
    "when, req, expected",
    [
        ("max_tokens > 2000", request(max_tokens=2001), True),
        ("max_tokens > 2000", request(max_tokens=2000), False),
        ("stream == true", request(stream=True), True),
        ("stream == false", request(stream=True), False),
        ("temperature < 0.5", request(params={"temperature": 0.2}), True),
        ("top_p == 1", request(params={"top_p": 1}), True),
        ("user == 'alice'", request(params={"user": "alice"}), True),
        ("model == 'chat'", request(), True),
        ("messages == 1", request(), True),
        ("prompt_tokens == 104", request("x" * 400), True),  # (400 + 3) // 4 + 4 per message
        ("prompt_tokens > 104", request("x" * 400), False),
        ("tools == 3", request(params={"tools": TOOLS}), True),
        ("tools == 0", request(), True),  # no tools: a count of zero
        ("params.tool_choice == 'auto'", request(params={"tool_choice": "auto"}), True),
        ("metadata.tier == 'gold' and max_tokens > 10", request(max_tokens=11, metadata={"tier": "gold"}), True),
        ("metadata.tier == 'gold' and max_tokens > 10", request(max_tokens=10, metadata={"tier": "gold"}), False),
        ("metadata.tier == 'gold' and max_tokens > 10", request(max_tokens=11), False),
    ],
)
def test_request_fields(when, req, expected):
    assert holds(when, req) is expected
