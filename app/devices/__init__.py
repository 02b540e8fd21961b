"""Phones: registered at login, listed for the county, revoked when lost."""
