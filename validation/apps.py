from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "validation"
    verbose_name = "Crowd validation"

    def ready(self) -> None:
        from allauth.account.signals import user_signed_up
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(_adopt_browser_voter, dispatch_uid="validation-adopt-on-sign-in")
        user_signed_up.connect(_adopt_browser_voter, dispatch_uid="validation-adopt-on-sign-up")


def _adopt_browser_voter(sender, request, user, **kwargs) -> None:
    """Signing up or in (the site, the admin) adopts the browser's anonymous voter: its
    votes, gold record, trust and donations become the account's."""
    if request is None or not hasattr(request, "session"):
        return
    from people.identity import session_voter

    from . import adoption

    adoption.adopt(session_voter(request), user)
