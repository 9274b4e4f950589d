"""The service's models: the source of truth for the database schema.

Every model module must be imported here so that `Base.metadata` knows all tables.
"""

from app.models.base import Base, TimestampMixin
from app.models.catalog import Product
from app.models.customers import Customer
from app.models.orders import Order, OrderItem, OrderStatus

metadata = Base.metadata

__all__ = ["Base", "Customer", "Order", "OrderItem", "OrderStatus", "Product", "TimestampMixin", "metadata"]
