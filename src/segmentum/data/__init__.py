"""Customer data: the canonical schema, file ingestion with quarantine, and the synthetic generator."""
