"""The HTTP server: uvicorn's protocol bounded per client, and the process settings of a worker."""
