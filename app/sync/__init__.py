"""Offline sync: batches up, the change feed down, conflicts and the county's sync status."""
