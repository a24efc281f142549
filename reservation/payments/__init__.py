"""Stripe as the use cases see it: the bounded gate every call goes through, the metadata a
Checkout Session carries, amounts Stripe accepts, and expiring a session."""
