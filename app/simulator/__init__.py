"""A simulator of phones at the end of the day: `fieldsync simulate`, and bench/phones.py.

N phones at once, each with its own connection over a slow, lossy link (link.py), log in as
officers, download their villages from the change feed, record visits and income snapshots
offline and sync them in batches, retrying as the app does (phone.py); then each reads back what
the server holds. The simulator speaks only HTTP to the server: it imports the API's schemas and
vocabulary for its bodies, never a service or the database.
"""

from app.simulator.link import LinkProfile
from app.simulator.phone import Plan
from app.simulator.run import Config, simulate, usernames
from app.simulator.summary import Summary

__all__ = ["Config", "LinkProfile", "Plan", "Summary", "simulate", "usernames"]
