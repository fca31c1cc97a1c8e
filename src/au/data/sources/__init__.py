"""One module per data source; each exposes a :class:`au.data.registry.Source`."""
