from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TimestampMixin

if TYPE_CHECKING:
    from app.models.orders import Order


class Customer(TimestampMixin, Base):
    """Someone who can place orders."""

    __tablename__ = "customers"
    __table_args__ = {"comment": "People and companies that place orders"}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, comment="Login and contact address")
    full_name: Mapped[str] = mapped_column(String(300))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))

    orders: Mapped[list[Order]] = relationship(back_populates="customer")
