"""Demo ERP: a small but realistic ERP with its own SQLite store, served as a Sync Connector.

Run it with ``python -m connectors.demo --port 8001 --secret-file FILE --data demo-erp.sqlite3``; add
``--latency-ms 200`` (or ``1000-3000``) to answer every protocol call as late as a real ERP would.
"""
