"""An account adopts the voter of the browser (or voter token) that signs in.

Signing up or in moves the current voter's votes, gold record, trust, donations
and reports to the account's voter, in one transaction; a second device that
signs in merges its voter the same way. One vote per pair still holds: where
both voted on a pair, the later answer is kept. Votes that would now be on the
account's own donations are dropped (nobody votes on their own picture). Then
every vote of the account is weighed again and every pair touched recounted,
through voting's rules.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction

from donations.models import Image, ImageLabel, Report
from people.models import Voter

from . import voting
from .models import Vote

log = logging.getLogger("imagemonkey.accounts")


def adopt(voter: Voter | None, user) -> Voter | None:
    """Make `voter` (an anonymous one: no account) part of `user`'s account.

    Returns the account's voter, or None when there was nothing to adopt and the
    account has no voter yet. A voter that already belongs to an account is never
    taken: signing in can only give, never read, another account's votes.
    """
    if voter is None or not voter.exists or voter.user_id is not None:
        return Voter.objects.filter(user=user).first()
    with transaction.atomic():
        # Both rows locked, in id order, so that two sign-ins at once wait for each other.
        account = Voter.objects.select_for_update().filter(user=user).first()
        source = Voter.objects.select_for_update().filter(pk=voter.pk, user__isnull=True).first()
        if source is None:
            return account
        if source.banned:
            # A discarded voter is left as it is: it may not launder its votes through an
            # account, nor taint the account of whoever signs in on its browser next.
            log.info("voter %s is discarded: not adopted by account %s", source.pk, user.pk)
            return account
        if account is None:
            # The first voter of the account: it simply becomes the account's.
            source.user = user
            source.save(update_fields=["user"])
            log.info("voter %s adopted by account %s", source.pk, user.pk)
            return source
        touched = _merge(source, account)
        # Trust from the two records together, by the training rule (either one's trust
        # stands while the sum keeps its accuracy).
        account.trusted = not account.banned and voting.evaluate_trust(account)
        account.save(update_fields=["trusted"])
        voting.recount_voter(account)
        for pair_id in touched:
            voting.settle(ImageLabel(pk=pair_id))
    log.info("voter %s merged into account %s's voter %s", voter.pk, user.pk, account.pk)
    return account


# Where both voters answered a pair, the older answer goes (the account's or the
# device's); the pairs are returned to be recounted.
_DROP_OLDER = """
WITH both_voted AS (
    SELECT a.id AS a_id, b.id AS b_id, a.pair_id,
           (a.updated, a.id) < (b.updated, b.id) AS a_older
    FROM validation_vote a JOIN validation_vote b ON b.pair_id = a.pair_id
    WHERE a.voter_id = %(account)s AND b.voter_id = %(source)s
)
DELETE FROM validation_vote v USING both_voted d
WHERE v.id = CASE WHEN d.a_older THEN d.a_id ELSE d.b_id END
RETURNING v.pair_id, v.answer, v.voter_id
"""


def _merge(source: Voter, account: Voter) -> set[int]:
    """Move everything of `source` to `account` (both locked), then delete `source`."""
    with connection.cursor() as cursor:
        cursor.execute(_DROP_OLDER, {"account": account.pk, "source": source.pk})
        dropped = cursor.fetchall()
    touched = {pair_id for pair_id, _, _ in dropped}
    _forget_double_gold(source, account, dropped)
    Vote.objects.filter(voter=source).update(voter=account)
    # Nobody votes on their own donation: not after a merge either.
    own = Vote.objects.filter(voter=account, pair__image__donor__in=[source.pk, account.pk])
    touched.update(own.values_list("pair_id", flat=True))
    own.delete()
    Image.objects.filter(donor=source).update(donor=account)
    ImageLabel.objects.filter(added_by=source).update(added_by=account)
    Report.objects.filter(
        reporter=source, image__in=Report.objects.filter(reporter=account).values("image")
    ).delete()
    Report.objects.filter(reporter=source).update(reporter=account)

    account.gold_correct += source.gold_correct
    account.gold_wrong += source.gold_wrong
    account.gold_by_label = _add_records(account.gold_by_label, source.gold_by_label)
    account.consensus_by_label = _add_records(account.consensus_by_label, source.consensus_by_label)
    account.trusted = account.trusted or source.trusted
    account.save(
        update_fields=[
            "gold_correct",
            "gold_wrong",
            "gold_by_label",
            "consensus_by_label",
            "trusted",
        ]
    )
    Voter.objects.filter(pk=source.pk).delete()
    return touched


def _forget_double_gold(source: Voter, account: Voter, dropped: list[tuple[int, int, int]]) -> None:
    """A gold pair both voters answered was scored twice: take the dropped answer's score
    out of the record it was in, so that it counts once."""
    gold = dict(
        ImageLabel.objects.filter(
            pk__in=[pair_id for pair_id, _, _ in dropped], is_gold=True
        ).values_list("pk", "gold_answer")
    )
    labels = dict(ImageLabel.objects.filter(pk__in=gold).values_list("pk", "label_id"))
    for pair_id, answer, voter_id in dropped:
        if pair_id not in gold or answer == Vote.Answer.SKIP:
            continue
        owner = source if voter_id == source.pk else account
        right = (answer == Vote.Answer.YES) == gold[pair_id]
        field = "gold_correct" if right else "gold_wrong"
        setattr(owner, field, max(0, getattr(owner, field) - 1))
        key = Voter.label_key(labels[pair_id])
        record = list(owner.gold_by_label.get(key, [0, 0]))
        record[0 if right else 1] = max(0, record[0 if right else 1] - 1)
        owner.gold_by_label[key] = record


def _add_records(mine: dict, theirs: dict) -> dict:
    merged = {key: list(value) for key, value in mine.items()}
    for key, (first, second) in theirs.items():
        have = merged.get(key, [0, 0])
        merged[key] = [have[0] + first, have[1] + second]
    return merged
