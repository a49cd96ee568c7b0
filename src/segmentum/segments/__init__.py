"""The segment language and the dynamic segment engine."""
