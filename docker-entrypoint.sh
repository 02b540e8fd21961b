#!/bin/sh
# Bring the schema to the latest migration, then run the given command (default: fieldsync serve).
set -eu
fieldsync migrate
exec "$@"
