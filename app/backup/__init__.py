"""Backups that restore: a consistent snapshot of the database, the photo bytes it names and the
keys, taken while phones sync (`fieldsync backup`), and their restore (`fieldsync restore`)."""
