"""Middleware: refuse query strings no database can store, attach the pseudonymous
voter to every request, lazily (a read never creates one), and choose where a request's
reads go (a replica or the primary)."""

from django.db import InterfaceError, OperationalError
from django.shortcuts import render
from django.utils.functional import SimpleLazyObject

from . import replicas
from .http import is_storable_text, json_error, wants_json
from .identity import SAFE_METHODS, voter_for_request

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


class ReplicaRoutingMiddleware:
    """Lets a request read on a replica when it may (see people/replicas.py).

    GET and HEAD from a visitor who has not written in the last few seconds may; every
    other request reads where it writes, on the primary, and leaves the read-your-writes
    marks behind it. A GET whose replica fails under it (stopped, restarted, cut off) is
    answered again from the primary: a GET writes nothing, so running it twice is safe,
    and the replica is skipped for a few seconds.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        safe = request.method in SAFE_METHODS
        allowed = safe and bool(replicas.replica_aliases()) and not replicas.wrote_recently(request)
        with replicas.replica_reads(allowed):
            response = self.get_response(request)
        if not safe and response.status_code < 400:
            replicas.remember_write(request, response)
        return response

    def process_exception(self, request, exception):
        alias = replicas.replica_in_use()
        if alias is None or not isinstance(exception, OperationalError | InterfaceError):
            return None
        replicas.mark_down(alias)
        replicas.pin_to_primary()
        match = request.resolver_match
        return match.func(request, *match.args, **match.kwargs)
