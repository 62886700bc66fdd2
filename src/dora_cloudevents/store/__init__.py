"""Storage: the SQLAlchemy schema, engines for SQLite and PostgreSQL, migrations and queries."""
