"""The Crazytel trunk portal: Django project package."""

__version__ = "0.1.0"
