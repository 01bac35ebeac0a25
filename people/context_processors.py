"""Template context shared by every page."""

from .pagecache import csrf_placeholder, is_rendering_for_cache


def page_cache(request):
    """While a page is rendered for the anonymous page cache, its forms get a placeholder
    instead of this visitor's CSRF token (each answer puts its own visitor's token there).

    Listed after Django's built-in csrf processor, whose `csrf_token` this replaces.
    """
    if is_rendering_for_cache(request):
        return {"csrf_token": csrf_placeholder()}
    return {}
