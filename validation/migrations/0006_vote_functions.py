"""Counting, settling and casting votes as PostgreSQL functions.

A vote is one round trip: `imagemonkey_cast_vote` finds the voter and the pair,
locks the pair, stores the vote and settles the pair, with plans PostgreSQL
keeps between calls. `imagemonkey_settle` and `imagemonkey_recount` are the
only implementation of the settling rules; the Python side (validation/voting.py,
ImageLabel.recount) calls them too. The rules' numbers come from the settings
on every call, as one jsonb argument (validation.models.vote_rules).
"""

from django.db import migrations

FUNCTIONS = r"""
-- The weight of one vote (one-coin Dawid–Skene); validation.models.vote_weight_for
-- says the same in Python, and tests hold the two equal.
CREATE OR REPLACE FUNCTION imagemonkey_vote_weight(
    correct integer, wrong integer, on_label jsonb, is_staff boolean, rules jsonb
) RETURNS double precision LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    cap double precision := (rules ->> 'accuracy_max')::float8;
    prior_right double precision := (rules ->> 'prior_right')::float8;
    strength double precision := (rules ->> 'label_prior')::float8;
    a double precision;
BEGIN
    IF is_staff THEN
        a := cap;
    ELSE
        a := least((correct + prior_right)
                   / (correct + wrong + prior_right + (rules ->> 'prior_wrong')::float8), cap);
        IF jsonb_typeof(on_label) = 'array' AND jsonb_array_length(on_label) > 0 THEN
            a := least(((on_label ->> 0)::float8 + strength * a)
                       / ((on_label ->> 0)::float8 + (on_label ->> 1)::float8 + strength), cap);
        END IF;
    END IF;
    IF a <= 0.5 THEN
        RETURN 0;
    END IF;
    RETURN ln(a / (1 - a));
END
$$;

-- Derive a pair's counts, probability, confidence, status and servable flag from
-- its counted votes; returns the updated row.
CREATE OR REPLACE FUNCTION imagemonkey_recount(p_pair bigint, p_now timestamptz, rules jsonb)
RETURNS validation_imagelabel LANGUAGE plpgsql AS $$
DECLARE
    pair validation_imagelabel;
    n_yes integer;
    n_no integer;
    evidence double precision;
    weighed boolean;
    bar double precision := (rules ->> 'bar')::float8;
    is_public boolean;
BEGIN
    SELECT * INTO pair FROM validation_imagelabel WHERE id = p_pair FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT count(*) FILTER (WHERE v.answer = 1),
           count(*) FILTER (WHERE v.answer = 0),
           coalesce(sum(CASE WHEN v.answer = 1 THEN w.weight ELSE -w.weight END), 0),
           coalesce(bool_or(w.weight > 0), false)
    INTO n_yes, n_no, evidence, weighed
    FROM validation_vote v
    JOIN validation_voter r ON r.id = v.voter_id
    LEFT JOIN auth_user u ON u.id = r.user_id
    CROSS JOIN LATERAL (
        SELECT imagemonkey_vote_weight(
            r.gold_correct, r.gold_wrong, r.gold_by_label -> ('label:' || pair.label_id),
            coalesce(u.is_staff, false), rules) AS weight
    ) w
    WHERE v.pair_id = p_pair AND v.counted;
    SELECT status = 'public' INTO is_public FROM donations_image WHERE id = pair.image_id;

    pair.num_yes := n_yes;
    pair.num_no := n_no;
    pair.probability := CASE WHEN n_yes + n_no > 0 THEN n_yes::float8 / (n_yes + n_no) ELSE 0 END;
    IF NOT weighed THEN
        pair.confidence := 0;
    ELSIF evidence >= 0 THEN
        pair.confidence := 1 / (1 + exp(-evidence));
    ELSE
        pair.confidence := exp(evidence) / (1 + exp(evidence));
    END IF;
    IF NOT weighed OR n_yes + n_no < pair.settle_after THEN
        pair.status := 'open';
    ELSIF evidence >= bar THEN
        pair.status := 'validated';
    ELSIF evidence <= -bar THEN
        pair.status := 'rejected';
    ELSE
        pair.status := 'open';
    END IF;
    pair.servable := pair.status = 'open' AND NOT pair.frozen AND is_public;
    pair.updated := p_now;
    UPDATE validation_imagelabel
    SET num_yes = pair.num_yes, num_no = pair.num_no, probability = pair.probability,
        confidence = pair.confidence, status = pair.status, servable = pair.servable,
        updated = pair.updated
    WHERE id = p_pair;
    RETURN pair;
END
$$;

-- 'dog' for a label, 'dog/eye' for a sublabel (Label.full_name), for alert messages.
CREATE OR REPLACE FUNCTION imagemonkey_label_name(p_label bigint)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN l.parent_id IS NULL THEN l.name ELSE parent.name || '/' || l.name END
    FROM labels_label l LEFT JOIN labels_label parent ON parent.id = l.parent_id
    WHERE l.id = p_label
$$;

-- Recount a pair after a vote, then what follows from it: remember the outcome
-- (a flip alert when it changed), a swing alert, promotion to gold, and, given
-- the network prefix of a vote, a burst alert. Returns the kinds of alerts raised.
CREATE OR REPLACE FUNCTION imagemonkey_settle(
    p_pair bigint, p_prefix text, p_now timestamptz, rules jsonb
) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    pair validation_imagelabel;
    alerts text[] := '{}';
    window_start timestamptz := p_now - make_interval(mins => (rules ->> 'window')::int);
    minutes text := rules ->> 'window';
    threshold integer := (rules ->> 'burst')::int;
    label_name text;
    image_uuid uuid;
    flipped_from text;
    recent integer;
    yes_recent integer;
    base_yes integer;
    base_no integer;
    base double precision;
    burst integer;
BEGIN
    pair := imagemonkey_recount(p_pair, p_now, rules);
    IF pair.id IS NULL THEN
        RETURN alerts;
    END IF;
    IF pair.status IN ('validated', 'rejected') AND pair.status <> pair.settled_as THEN
        flipped_from := pair.settled_as;
        UPDATE validation_imagelabel SET settled_as = pair.status WHERE id = p_pair;
        IF flipped_from <> '' THEN
            label_name := imagemonkey_label_name(pair.label_id);
            SELECT uuid INTO image_uuid FROM donations_image WHERE id = pair.image_id;
            INSERT INTO validation_alert
                (kind, pair_id, label_id, ip_prefix, message, details, created, resolved)
            VALUES ('flip', p_pair, pair.label_id, '',
                    format('“%s” on %s flipped from %s to %s.',
                           label_name, image_uuid, flipped_from, pair.status),
                    jsonb_build_object('from', flipped_from, 'to', pair.status,
                                       'yes', pair.num_yes, 'no', pair.num_no),
                    p_now, false);
            alerts := alerts || 'flip'::text;
        END IF;
    END IF;

    -- A swing: the yes share moved by more than ALERT_SWING within the window.
    IF pair.num_yes + pair.num_no >= 4 THEN
        SELECT count(*), count(*) FILTER (WHERE answer = 1) INTO recent, yes_recent
        FROM validation_vote WHERE pair_id = p_pair AND counted AND updated >= window_start;
        base_yes := pair.num_yes - yes_recent;
        base_no := pair.num_no - (recent - yes_recent);
        IF recent >= 3 AND base_yes + base_no > 0 THEN
            base := base_yes::float8 / (base_yes + base_no);
            IF abs(pair.probability - base) > (rules ->> 'swing')::float8
               AND NOT EXISTS (SELECT 1 FROM validation_alert
                               WHERE kind = 'swing' AND pair_id = p_pair
                                 AND created >= window_start) THEN
                label_name := imagemonkey_label_name(pair.label_id);
                SELECT uuid INTO image_uuid FROM donations_image WHERE id = pair.image_id;
                INSERT INTO validation_alert
                    (kind, pair_id, label_id, ip_prefix, message, details, created, resolved)
                VALUES ('swing', p_pair, pair.label_id, '',
                        format('“%s” on %s swung from %s to %s within %s minutes.',
                               label_name, image_uuid, to_char(base, 'FM0.00'),
                               to_char(pair.probability, 'FM0.00'), minutes),
                        jsonb_build_object('from', round(base::numeric, 4),
                                           'to', round(pair.probability::numeric, 4),
                                           'votes', recent),
                        p_now, false);
                alerts := alerts || 'swing'::text;
            END IF;
        END IF;
    END IF;

    -- Settled by many unanimous counted votes: gold from now on.
    IF pair.status IN ('validated', 'rejected') AND NOT pair.is_gold
       AND pair.num_yes + pair.num_no >= (rules ->> 'promote')::int
       AND (pair.num_yes = 0 OR pair.num_no = 0) THEN
        UPDATE validation_imagelabel
        SET is_gold = true, gold_answer = pair.status = 'validated'
        WHERE id = p_pair;
    END IF;

    -- A burst: ALERT_BURST_VOTES votes on this label from one network in the window.
    IF p_prefix <> '' AND p_prefix <> 'unknown' THEN
        SELECT count(*) INTO burst FROM (
            SELECT 1 FROM validation_vote v
            JOIN validation_imagelabel q ON q.id = v.pair_id
            WHERE v.ip_prefix = p_prefix AND v.updated >= window_start
              AND q.label_id = pair.label_id
            LIMIT threshold
        ) s;
        IF burst >= threshold
           AND NOT EXISTS (SELECT 1 FROM validation_alert
                           WHERE kind = 'burst' AND ip_prefix = p_prefix
                             AND label_id = pair.label_id AND created >= window_start) THEN
            label_name := imagemonkey_label_name(pair.label_id);
            INSERT INTO validation_alert
                (kind, pair_id, label_id, ip_prefix, message, details, created, resolved)
            VALUES ('burst', NULL, pair.label_id, p_prefix,
                    format('%s+ votes on “%s” from %s within %s minutes.',
                           threshold, label_name, p_prefix, minutes),
                    jsonb_build_object('votes', burst, 'prefix', p_prefix),
                    p_now, false);
            alerts := alerts || 'burst'::text;
        END IF;
    END IF;
    RETURN alerts;
END
$$;

-- One vote by an API token holder on (picture, label), in one round trip.
-- outcome: 'recorded'; 'unknown_token'; 'not_found' (no such public picture with
-- that label); 'closed' (the label may not be used: inactive, a category, or its
-- parent inactive); 'own' (the voter donated the picture); 'frozen'; or 'python'
-- when the vote needs validation.voting's own path (a gold pair scores the
-- voter's training; a moderator's answer can make gold), with nothing written.
-- The vote's time is read once the pair is locked, so that votes on one pair
-- are stamped in the order they are counted.
CREATE OR REPLACE FUNCTION imagemonkey_cast_vote(
    p_token text, p_image uuid, p_label bigint, p_answer smallint, p_prefix text, rules jsonb,
    OUT outcome text, OUT voted_pair bigint, OUT replaced boolean, OUT counted boolean,
    OUT alerts text[]
) LANGUAGE plpgsql AS $$
DECLARE
    voter record;
    pair record;
    now_ timestamptz;
    used_prefix text;
BEGIN
    SELECT r.id, r.trusted, r.banned, coalesce(u.is_staff, false) AS staff INTO voter
    FROM validation_voter r LEFT JOIN auth_user u ON u.id = r.user_id
    WHERE r.token_sha256 = p_token;
    IF NOT FOUND THEN
        outcome := 'unknown_token';
        RETURN;
    END IF;
    IF voter.staff THEN
        outcome := 'python';
        RETURN;
    END IF;
    SELECT p.id, p.is_gold, p.frozen, i.status AS image_status, i.donor_id,
           l.active AND NOT l.is_meta AND (parent.id IS NULL OR parent.active) AS taggable
    INTO pair
    FROM validation_imagelabel p
    JOIN donations_image i ON i.id = p.image_id
    JOIN labels_label l ON l.id = p.label_id
    LEFT JOIN labels_label parent ON parent.id = l.parent_id
    WHERE i.uuid = p_image AND p.label_id = p_label
    FOR UPDATE OF p;
    IF NOT FOUND OR pair.image_status <> 'public' THEN
        outcome := 'not_found';
    ELSIF NOT pair.taggable THEN
        outcome := 'closed';
    ELSIF pair.donor_id IS NOT NULL AND pair.donor_id = voter.id THEN
        outcome := 'own';
    ELSIF pair.frozen THEN
        outcome := 'frozen';
    ELSIF pair.is_gold THEN
        outcome := 'python';
    END IF;
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;
    voted_pair := pair.id;
    now_ := clock_timestamp();
    counted := voter.trusted AND NOT voter.banned AND p_answer <> 2;
    -- The pair is locked: nobody else can add or remove this voter's vote meanwhile.
    replaced := EXISTS (SELECT 1 FROM validation_vote v
                        WHERE v.pair_id = pair.id AND v.voter_id = voter.id);
    INSERT INTO validation_vote AS v
        (pair_id, voter_id, answer, counted, ip_prefix, created, updated)
    VALUES (pair.id, voter.id, p_answer, counted, p_prefix, now_, now_)
    ON CONFLICT (pair_id, voter_id) DO UPDATE
    SET answer = excluded.answer, counted = excluded.counted, updated = excluded.updated,
        ip_prefix = CASE WHEN excluded.ip_prefix <> '' THEN excluded.ip_prefix
                         ELSE v.ip_prefix END
    RETURNING v.ip_prefix INTO used_prefix;
    alerts := imagemonkey_settle(pair.id, used_prefix, now_, rules);
    outcome := 'recorded';
END
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS imagemonkey_cast_vote(text, uuid, bigint, smallint, text, jsonb);
DROP FUNCTION IF EXISTS imagemonkey_settle(bigint, text, timestamptz, jsonb);
DROP FUNCTION IF EXISTS imagemonkey_recount(bigint, timestamptz, jsonb);
DROP FUNCTION IF EXISTS imagemonkey_label_name(bigint);
DROP FUNCTION IF EXISTS imagemonkey_vote_weight(integer, integer, jsonb, boolean, jsonb);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("validation", "0005_remove_voter_tasks_served"),
        ("donations", "0001_initial"),
        ("labels", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunSQL(FUNCTIONS, DROP)]
