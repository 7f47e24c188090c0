"""Stream runs: Structured Streaming micro-batches and their checkpoints."""
