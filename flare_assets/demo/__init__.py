"""The demo lakehouse: depots, manifests and a seeded data generator."""
