"""The exchange API: queries, verifications, the catalog, grants, access log, consents."""

from ninja import Router

router = Router(tags=["exchange"])
