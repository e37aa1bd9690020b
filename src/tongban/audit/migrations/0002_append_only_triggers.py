"""On PostgreSQL, refuse UPDATE and DELETE of audit entries and checkpoints in the database
itself, so even raw SQL through the application's role has to switch the triggers off
first. A no-op elsewhere: SQLite relies on `tongban audit verify` alone.

TRUNCATE is not blocked: the test runner empties tables with it between tests.
"""

from django.db import migrations

TABLES = {
    "audit_auditentry": "audit_entry_append_only",
    "audit_auditcheckpoint": "audit_checkpoint_append_only",
}

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # No params: the "%" in RAISE is PL/pgSQL formatting, not a driver placeholder.
    schema_editor.execute(FUNCTION, params=None)
    for table, trigger in TABLES.items():
        schema_editor.execute(
            f"CREATE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, trigger in TABLES.items():
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
