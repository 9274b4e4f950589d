"""Engine and session for the service. The URL comes from DATABASE_URL."""

from __future__ import annotations

import os

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker


def database_url(raw: str | None = None) -> URL:
    """DATABASE_URL as a SQLAlchemy URL using the psycopg (v3) driver."""
    value = raw if raw is not None else os.environ.get("DATABASE_URL", "")
    if not value:
        raise RuntimeError("DATABASE_URL is not set (see .env.example)")
    url = make_url(value)
    if url.get_backend_name() not in ("postgres", "postgresql"):
        raise RuntimeError(f"DATABASE_URL must be a PostgreSQL URL, not {url.get_backend_name()!r}")
    # Atlas's postgres:// URLs and plain postgresql:// ones both mean psycopg here.
    return url.set(drivername="postgresql+psycopg")


def make_engine(raw: str | None = None, **kwargs) -> Engine:
    return create_engine(database_url(raw), pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
