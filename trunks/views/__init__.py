"""Thin views: parse input, check who may act, call a service or selector, render page or partial."""
