"""Photos: the bytes the server holds, by sha256."""
