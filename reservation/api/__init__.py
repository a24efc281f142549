"""HTTP endpoints: thin handlers over the core, the catalog and the order store."""
