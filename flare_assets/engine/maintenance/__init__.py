"""Table maintenance: Iceberg's procedures as Flare actions, and table health."""
