"""One use case per verb: hold, release, checkout, the webhook entry, the catalog. HTTP
handlers and the CLI call these; each writes its sequence (memory, limits, key claim, script,
metrics) once."""
