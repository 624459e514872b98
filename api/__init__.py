"""The automation API (/api/v1/): per-user tokens, and routes that call the same services as the pages."""
