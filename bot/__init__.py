"""deskbot's application package: settings, storage, shared state, jobs and the CLI."""

__all__: list[str] = []
