"""The world of the authorization matrix (village A1's household, records, photo, batch…)."""

from tests.test_authz_matrix import ctx  # noqa: F401
