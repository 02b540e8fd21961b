"""Dependencies the photo routes share: the photo store and the settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings, get_settings
from app.photos.storage import Storage, make_storage


def get_storage(request: Request) -> Storage:
    state = request.app.state
    storage: Storage | None = getattr(state, "storage", None)
    if storage is None:
        storage = state.storage = make_storage(get_settings())
    return storage


StorageDep = Annotated[Storage, Depends(get_storage)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
