"""MongoDB: the durable catalog, orders and Stripe events."""
