from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "validation"
    verbose_name = "Crowd validation"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(_adopt_browser_voter, dispatch_uid="validation-adopt-on-sign-in")


def _adopt_browser_voter(sender, request, user, **kwargs) -> None:
    """Signing in (the site, the admin; after signing up, confirming the address signs in)
    adopts the browser's anonymous voter: its votes, gold record, trust and donations become
    the account's.

    Not at sign-up itself: the address is not proven yet, and whoever signed up with
    someone else's address must not plant a voter in the account its owner later resets
    the password of."""
    if request is None or not hasattr(request, "session"):
        return
    from people.identity import session_voter

    from . import adoption

    adoption.adopt(session_voter(request), user)
