"""How the service reaches its stores: Redis clients (pooled with a queue, packed, clustered),
and the embedded stand-ins used when no store is configured."""
