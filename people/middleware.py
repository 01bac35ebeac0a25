"""Middleware: refuse query strings no database can store, and attach the pseudonymous
voter to every request, lazily (a read never creates one)."""

from django.shortcuts import render
from django.utils.functional import SimpleLazyObject

from .http import is_storable_text, json_error, wants_json
from .identity import voter_for_request

UNSTORABLE = "The address holds a NUL character, which no field accepts. Remove it and try again."


class StorableQueryMiddleware:
    """A 400 with a reason for a query string holding NUL, before any view runs.

    PostgreSQL cannot compare or store NUL in text, so such a value would reach the
    database as an error. Query strings only: reading a body here would parse an
    upload before the view has set its size limit. Bodies are checked where they are
    read (people.http.read_json, Django's form fields).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not all(is_storable_text(text) for text in _texts(request.GET)):
            if wants_json(request):
                return json_error(UNSTORABLE.lower().rstrip("."), 400)
            return render(request, "400.html", {"message": UNSTORABLE}, status=400)
        return self.get_response(request)


def _texts(query):
    for key, values in query.lists():
        yield key
        yield from values


class VoterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.voter = SimpleLazyObject(lambda: voter_for_request(request))
        return self.get_response(request)
