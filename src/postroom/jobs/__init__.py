"""Durable work on the database: leases (who runs which connection), transaction locks, the outbox worker."""
