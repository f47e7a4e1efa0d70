"""Actions of the example NeMo config (NeMo loads actions.py from the config directory)."""

from nemoguardrails.actions import action


@action(name="lookup_support_contact")
async def lookup_support_contact() -> str:
    # stands in for a CRM lookup; the PII in it is what the output rail redacts
    return "Write to support@example-bank.com or call +1 415-555-0132."
