"""A Sync Connector for the Tryton ERP, over Tryton's JSON-RPC (see docs/connectors/tryton.md)."""
