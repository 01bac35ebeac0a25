"""The settling rules live in Python only (validation.rules, applied by validation.voting):
drop the PL/pgSQL functions of migration 0006, whatever signature a database has of
them (0006 was changed after some databases had applied it). Going back recreates
them from 0006, which never changes again."""

import importlib

from django.db import migrations

DROP_ALL = """
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = current_schema() AND p.proname LIKE 'imagemonkey\\_%'
    LOOP
        EXECUTE 'DROP FUNCTION ' || f;
    END LOOP;
END
$$;
"""

FUNCTIONS = importlib.import_module("validation.migrations.0006_vote_functions").FUNCTIONS


class Migration(migrations.Migration):
    dependencies = [("validation", "0010_vote_weight")]

    operations = [migrations.RunSQL(DROP_ALL, FUNCTIONS)]
