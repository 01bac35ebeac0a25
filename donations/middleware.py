"""The site's Content-Security-Policy, with the origin public pictures come from."""

from csp.middleware import CSPMiddleware, PolicyParts

from .storage import public_media_origin


class MediaOriginCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, whose img-src also names where public pictures live.

    With MEDIA_BACKEND=s3 a page's <img> points at the bucket (or MEDIA_PUBLIC_URL), another
    origin than the site's: without it in img-src, browsers would refuse every picture. The
    filesystem store serves them at MEDIA_URL, the site's own origin ('self').
    """

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        origin = public_media_origin()
        if origin is not None:
            update = dict(parts.update or {})
            update["img-src"] = [*update.get("img-src", ()), origin]
            parts.update = update
        return parts
