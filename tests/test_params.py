"""providers/params.py: parameter differences as table rows, read by one mapper."""

from __future__ import annotations

import pytest

from providers.kinds import KINDS
from providers.params import DROP, Param, as_list, as_text, drops, map_params, overlay, table

GEMINI_LIKE = table(
    Param("temperature", to="generationConfig.temperature", max=2.0),
    Param("top_p", to="generationConfig.topP"),
    Param("max_tokens", to="generationConfig.maxOutputTokens", default=1024, min=1),
    Param("stop", to="generationConfig.stopSequences", transform=as_list),
    Param("user", to="labels.user", transform=as_text),
    Param("logit_bias", drop=True),
)


def test_renames_nest_and_merge_into_one_object():
    body = map_params(GEMINI_LIKE, {"temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "stop": "END"}, passthrough=False)
    assert body == {"generationConfig": {"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 50, "stopSequences": ["END"]}}


def test_default_fills_only_what_the_client_did_not_send():
    assert map_params(GEMINI_LIKE, {}, passthrough=False) == {"generationConfig": {"maxOutputTokens": 1024}}
    assert map_params(GEMINI_LIKE, {"max_tokens": None}, passthrough=False) == {"generationConfig": {"maxOutputTokens": 1024}}


def test_numbers_are_clamped_into_the_providers_range_keeping_their_type():
    body = map_params(GEMINI_LIKE, {"temperature": 3, "max_tokens": 0}, passthrough=False)["generationConfig"]
    assert body["temperature"] == 2.0
    assert body["maxOutputTokens"] == 1 and isinstance(body["maxOutputTokens"], int)


def test_drops_and_transforms_that_drop_leave_the_parameter_out():
    body = map_params(GEMINI_LIKE, {"logit_bias": {"1": 2}, "stop": [], "user": ""}, passthrough=False)
    assert body == {"generationConfig": {"maxOutputTokens": 1024}}
    assert as_list("x") == ["x"] and as_list(("a", "b")) == ["a", "b"] and as_list(None) is DROP


def test_unlisted_parameters_pass_only_in_the_openai_dialect():
    params = {"seed": 7, "temperature": 0.1}
    assert map_params(GEMINI_LIKE, params, passthrough=False) == {
        "generationConfig": {"temperature": 0.1, "maxOutputTokens": 1024}}
    assert map_params({}, params, passthrough=True) == params
    assert map_params({}, {"model": "x", "stream": True, "seed": 1}, passthrough=True) == {"seed": 1}


def test_a_kinds_rows_overlay_its_wire_formats_table():
    merged = overlay(GEMINI_LIKE, [Param("temperature", to="generationConfig.temperature", max=1.0), *drops("top_p")])
    body = map_params(merged, {"temperature": 1.5, "top_p": 0.5}, passthrough=False)
    assert body == {"generationConfig": {"temperature": 1.0, "maxOutputTokens": 1024}}
    assert overlay(GEMINI_LIKE, ()) is GEMINI_LIKE


def test_a_parameter_declared_twice_is_refused():
    with pytest.raises(ValueError, match="declared twice"):
        table(Param("stop"), Param("stop", drop=True))


def test_kind_rows_reach_openai_compatible_bodies():
    assert map_params(KINDS["mistral"].param_table, {"user": "u", "logprobs": True, "temperature": 0.2},
                      passthrough=True) == {"temperature": 0.2}
    assert map_params(KINDS["perplexity"].param_table, {"temperature": 2, "tools": [{}]}, passthrough=True) == {
        "temperature": 1.99}
