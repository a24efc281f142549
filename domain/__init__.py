"""The bottom layer: what the service (`reservation`) and its storage (`persistence`) both say.

`errors` is the project's one error tree (the HTTP layer maps it to status codes in one
place, reservation/api/failures.py); `rules` are the names, counts and limits that every layer
(and the HTTP contract) checks the same way; `statuses` are an order's and a Checkout
Session's; `reservations`, `outcomes` and `products` are the values the core and the catalog
hand out. It imports nothing of the project, so nothing here can pull an upper layer in (the
import-linter contracts in pyproject.toml hold it).
"""
