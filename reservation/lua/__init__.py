"""The Lua scripts (one Redis Functions library) and, beside each, the one typed decoder of
its reply."""
