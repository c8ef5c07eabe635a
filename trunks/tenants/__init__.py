"""Tenants, their members and Crazytel credentials: services, selectors, forms, views."""
