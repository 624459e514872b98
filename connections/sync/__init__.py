"""The sync engine: no views, no HTTP handling of its own; docs/sync-semantics.md is its specification."""
