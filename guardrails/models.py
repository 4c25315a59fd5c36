# Guardrail entities arrive with the guardrails issue.
