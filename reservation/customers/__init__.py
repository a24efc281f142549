"""Who a buyer is: customer tokens (JWTs the shop signs) verified, and the caller they name."""
