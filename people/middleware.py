"""Attach the pseudonymous voter to every request, lazily (a read never creates one)."""

from django.utils.functional import SimpleLazyObject

from .identity import voter_for_request


class VoterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.voter = SimpleLazyObject(lambda: voter_for_request(request))
        return self.get_response(request)
