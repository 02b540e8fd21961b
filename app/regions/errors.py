from app.core.errors import Conflict, NotFound


class RegionNotFound(NotFound):
    code = "region_not_found"
    title = "Region not found"


class RegionExists(Conflict):
    code = "region_exists"
    title = "Region already exists"
