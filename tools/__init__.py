"""Host-side workflow: the logic behind tasks.py (see README.md)."""
