"""The inbound APIs besides OpenAI chat (routing.api.INBOUND): each module parses its
API's request into the internal ChatRequest (or EmbeddingRequest), runs it through the
same pipeline as chat (keys, routes, budgets, guardrails, cache, ledger), and renders
the answer, the stream and every error in its own API's wire format.

    anthropic   POST /v1/messages, /v1/messages/count_tokens; GET /v1/models (Anthropic shape)
    responses   POST /v1/responses (OpenAI Responses, stateless)
    embeddings  POST /v1/embeddings
"""
