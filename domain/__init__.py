"""The bottom layer: what the service (`reservation`) and its storage (`persistence`) both say.

`errors` is the project's one error tree (the HTTP layer maps it to status codes in one
place, reservation/api/failures.py); `rules` are the SKU and pool names and the counts of
units that every layer checks the same way. It imports nothing of the project, so nothing
here can pull an upper layer in (the import-linter contracts in pyproject.toml hold it).
"""
