"""Accounts: sign-in through the company's identity provider, and the second factor."""
