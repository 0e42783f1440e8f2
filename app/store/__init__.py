"""Storage: SQLAlchemy 2 models, the Database wrapper and Alembic migrations."""
from app.store.db import Database

__all__ = ["Database"]
