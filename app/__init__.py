"""The service: an online shop's ordering backend."""
