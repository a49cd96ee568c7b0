"""The `segmentum` command line (Typer), one module per command group."""
