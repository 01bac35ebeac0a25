"""Task tickets: a vote is taken only on a pair that was served to its voter.

Serving a task writes nothing, so what was served is carried by the task itself:
a short signed string naming the voter, the pair and the time it was served
(HMAC with the site's secret, django.core.signing). A vote presents it back;
one without a valid ticket for this voter and this pair is refused and stores
nothing. Gold and ordinary pairs get tickets of the same form and length.

A visitor who has no voter yet (their first task) gets a ticket for "no voter";
it is good for a voter younger than the ticket, voting from the network the
task was served to: the one the visitor's first write creates. (Since serving writes nothing, anyone may ask again for another
task; a ticket bounds them to what selection offers — open pairs in a random
window — never an arbitrary or settled pair, and never one it picks as gold.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing

from donations.models import ImageLabel
from people.models import Voter

_SALT = "imagemonkey.task-ticket"
NO_VOTER = 0
MAX_LENGTH = 200  # a ticket is about 70 characters


class TicketRefused(Exception):
    """The vote's ticket does not let this voter answer this pair."""


def issue(voter: Voter, pair: ImageLabel, network: str = "") -> str:
    """The ticket of one served task; a visitor's (no voter yet) names their network."""
    return issue_for(voter, pair.pk, network)


def issue_for(voter: Voter, item: int | str, network: str = "", kind: str = "") -> str:
    """The ticket of one served task of another `kind` (annotations: "outline:check" with
    the outline's id and revision as `item`); a ticket of one kind is no good for another."""
    salt = f"{_SALT}.{kind}" if kind else _SALT
    if voter.pk is None:
        return signing.dumps([NO_VOTER, item, network], salt=salt, compress=False)
    return signing.dumps([voter.pk, item], salt=salt, compress=False)


def verify(
    ticket: object, voter: Voter, pair_id: int | str, network: str = "", kind: str = ""
) -> None:
    """Raise TicketRefused unless `ticket` was issued, lately, for this voter and pair
    (`network`: where the vote comes from, which a visitor's ticket must match; `kind`:
    as issue_for was told)."""
    if not isinstance(ticket, str) or not ticket or len(ticket) > MAX_LENGTH:
        raise TicketRefused("This vote has no ticket: answer a task you were served.")
    try:
        voter_id, ticketed_pair, *served_to = signing.loads(
            ticket,
            salt=f"{_SALT}.{kind}" if kind else _SALT,
            max_age=timedelta(seconds=settings.TASK_TICKET_SECONDS),
        )
    except signing.SignatureExpired:
        raise TicketRefused("This task has expired; ask for a new one.") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise TicketRefused("This vote's ticket is not valid.") from None
    if ticketed_pair != pair_id:
        raise TicketRefused("This vote's ticket is for another task.")
    if voter.pk is not None and voter_id == voter.pk:
        return
    if voter_id == NO_VOTER and served_to == [network] and _new_since(voter, ticket):
        return
    raise TicketRefused("This vote's ticket was issued to someone else.")


def _new_since(voter: Voter, ticket: str) -> bool:
    """Whether this voter did not exist yet when the no-voter ticket was served: the
    visitor the task was served to, whose first write created them."""
    return not voter.exists or voter.created >= _served_at(ticket)


def _served_at(ticket: str) -> datetime:
    """When a ticket whose signature has been checked was issued."""
    _, timestamp, _ = ticket.rsplit(":", 2)
    return datetime.fromtimestamp(signing.b62_decode(timestamp), tz=UTC)
