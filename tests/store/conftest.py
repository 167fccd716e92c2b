"""The store tier uses the database fixtures of tests/conftest.py (PostgreSQL and SQLite)."""
