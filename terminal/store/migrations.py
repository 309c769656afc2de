"""The schema's history: named migrations, applied once and in order by terminal.store.db.migrate."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlite_utils

from terminal.store.audit_rekey import rekey
from terminal.store.legacy_journals import move_journals_in
from terminal.store.payment_rows import add_payment_rows
from terminal.store.people_migration import seal_people

# SQL, or a Python step for what SQL cannot do (read an old file); either runs in the migration's transaction.
Step = str | Callable[[sqlite_utils.Database], None]


def _settlements_reversible(db: sqlite_utils.Database) -> None:
    """A reversed settlement keeps its row but no longer holds its bill: the bill may be settled again.

    SQLite cannot drop a column's UNIQUE, so the table is rebuilt (rowids kept) with the uniqueness moved
    to a partial index over the settlements not reversed.
    """
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'settlements'").fetchone()
    sql = str(row[0])
    rebuilt = sql.replace("chrg_bchno TEXT NOT NULL UNIQUE", "chrg_bchno TEXT NOT NULL", 1)
    rebuilt = rebuilt.replace("CREATE TABLE settlements", "CREATE TABLE settlements_rebuilt", 1)
    # reversed_at: the settlement was undone (its bill free again); restored_at: its accumulators were
    # taken back out (by a reversal, a void or a refusal), which must happen exactly once.
    rebuilt = rebuilt.rstrip().rstrip(")") + ", reversed_at TEXT, restored_at TEXT)"
    db.execute(rebuilt)
    columns = [str(c[1]) for c in db.execute("PRAGMA table_info(settlements)").fetchall()]
    names = ", ".join(columns)
    db.execute(f"INSERT INTO settlements_rebuilt (rowid, {names}) SELECT rowid, {names} FROM settlements")
    db.execute("DROP TABLE settlements")
    db.execute("ALTER TABLE settlements_rebuilt RENAME TO settlements")
    db.execute(
        "CREATE UNIQUE INDEX settlements_live_bill ON settlements(chrg_bchno) WHERE reversed_at IS NULL"
    )


# (name, step). Append only: a migration that has shipped is never edited, a new one is added.
MIGRATIONS: Sequence[tuple[str, Step]] = (
    (
        "0001_people_and_templates",
        """
        CREATE TABLE persons (
            psn_no TEXT PRIMARY KEY,
            psn_name TEXT NOT NULL,
            certno TEXT NOT NULL,
            insutype TEXT NOT NULL,
            psn_type TEXT NOT NULL,
            insuplc_admdvs TEXT NOT NULL,
            acct_balc TEXT NOT NULL,
            gend TEXT NOT NULL,
            brdy TEXT
        );
        CREATE UNIQUE INDEX persons_certno ON persons(certno);
        CREATE TABLE consents (
            id INTEGER PRIMARY KEY,
            psn_no TEXT NOT NULL REFERENCES persons(psn_no),
            granted_at TEXT NOT NULL,
            purpose TEXT NOT NULL,
            operator TEXT NOT NULL,
            text TEXT NOT NULL,
            withdrawn_at TEXT
        );
        CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            psn_no TEXT NOT NULL REFERENCES persons(psn_no),
            consent_id INTEGER NOT NULL REFERENCES consents(id),
            nonce BLOB NOT NULL,
            ciphertext BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX templates_psn ON templates(psn_no);
        """,
    ),
    (
        "0002_ledger_outbox_audit",
        """
        CREATE TABLE settlements (
            msgid TEXT PRIMARY KEY,
            chrg_bchno TEXT NOT NULL UNIQUE,
            psn_no TEXT NOT NULL,
            med_type TEXT NOT NULL,
            identified_by TEXT NOT NULL,
            setl_time TEXT NOT NULL,
            medfee_sumamt TEXT NOT NULL,
            fund_pay_sumamt TEXT NOT NULL,
            psn_part_amt TEXT NOT NULL,
            result TEXT NOT NULL
        );
        CREATE TABLE accumulators (
            psn_no TEXT NOT NULL,
            year INTEGER NOT NULL,
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (psn_no, year)
        );
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            msgid TEXT NOT NULL UNIQUE,
            infno TEXT NOT NULL,
            envelope TEXT NOT NULL,
            created_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE counters (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        );
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        """,
    ),
    (
        "0003_credentials",
        """
        CREATE TABLE credentials (
            mdtrt_cert_type TEXT NOT NULL,
            mdtrt_cert_no TEXT NOT NULL,
            psn_no TEXT NOT NULL REFERENCES persons(psn_no),
            PRIMARY KEY (mdtrt_cert_type, mdtrt_cert_no)
        );
        """,
    ),
    (
        "0004_uplink_results_reconcile",
        """
        ALTER TABLE outbox ADD COLUMN delivered_at TEXT;
        ALTER TABLE outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
        ALTER TABLE outbox ADD COLUMN outcome_unknown INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX outbox_state_seq ON outbox(state, seq);
        CREATE TABLE upstream_results (
            msgid TEXT PRIMARY KEY,
            infno TEXT NOT NULL,
            inf_refmsgid TEXT NOT NULL,
            output TEXT NOT NULL,
            received_at TEXT NOT NULL
        );
        CREATE TABLE reconcile (
            id INTEGER PRIMARY KEY,
            msgid TEXT NOT NULL,
            field TEXT NOT NULL,
            local TEXT NOT NULL,
            upstream TEXT NOT NULL,
            recorded_at TEXT NOT NULL
        );
        CREATE INDEX reconcile_msgid ON reconcile(msgid);
        CREATE TABLE upstream_totals (
            day TEXT PRIMARY KEY,
            stmt_rslt TEXT NOT NULL,
            local TEXT NOT NULL,
            upstream TEXT NOT NULL,
            checked_at TEXT NOT NULL
        );
        """,
    ),
    (
        "0005_checkout_sessions",
        """
        CREATE TABLE checkout_sessions (
            session_id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            started_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            face_failures INTEGER NOT NULL DEFAULT 0,
            psn_no TEXT,
            method TEXT,
            bill TEXT,
            msgid TEXT
        );
        CREATE INDEX checkout_sessions_state ON checkout_sessions(state, updated_at);
        CREATE TABLE checkout_session_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL,
            at TEXT NOT NULL,
            event TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE INDEX checkout_session_events_session ON checkout_session_events(session_id, seq);
        """,
    ),
    (
        "0006_settlement_year_offline",
        """
        ALTER TABLE settlements ADD COLUMN year INTEGER;
        ALTER TABLE settlements ADD COLUMN offline INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        "0007_person_benefits",
        """
        CREATE TABLE person_benefits (
            psn_no TEXT PRIMARY KEY REFERENCES persons(psn_no),
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """,
    ),
    # The receipt and HIS-notice journals, until now files of their own, with their rows imported.
    ("0008_receipt_and_notice_journals", move_journals_in),
    # Templates tagged with the embedder model that made them (docs/identity.md, "Changing the embedder").
    # Every row stored so far came from the dlib ResNet, the only embedder until then: tagged with its
    # model id and marked as sealed to the owner alone (sealed_with 1), the form they were written in.
    # New rows are sealed to owner and model (2). Rebuilt rather than altered so that model_id has no
    # default: a row that does not say which model made it cannot be written.
    (
        "0009_templates_model_id",
        """
        CREATE TABLE templates_tagged (
            id INTEGER PRIMARY KEY,
            psn_no TEXT NOT NULL REFERENCES persons(psn_no),
            consent_id INTEGER NOT NULL REFERENCES consents(id),
            model_id TEXT NOT NULL,
            sealed_with INTEGER NOT NULL CHECK (sealed_with IN (1, 2)),
            nonce BLOB NOT NULL,
            ciphertext BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        INSERT INTO templates_tagged
            (id, psn_no, consent_id, model_id, sealed_with, nonce, ciphertext, created_at)
            SELECT id, psn_no, consent_id, 'dlib_resnet@e0b69024dfe5', 1, nonce, ciphertext, created_at
            FROM templates;
        DROP TABLE templates;
        ALTER TABLE templates_tagged RENAME TO templates;
        CREATE INDEX templates_psn ON templates(psn_no);
        CREATE INDEX templates_model ON templates(model_id, psn_no);
        """,
    ),
    # Identification attempts counted terminal-wide (face and credentials), and face's pause. An attempt is
    # written 'open' when it starts, so one abandoned by cancel, timeout or a crash counts as failed.
    (
        "0010_identity_attempts",
        """
        CREATE TABLE identity_attempts (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('face', 'credential')),
            began_at TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('open', 'pass', 'fail')),
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX identity_attempts_began ON identity_attempts(began_at);
        CREATE TABLE identity_pause (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            paused_until TEXT,
            reset_at TEXT
        );
        ALTER TABLE checkout_sessions ADD COLUMN credential_attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE checkout_sessions ADD COLUMN verify_claim TEXT;
        """,
    ),
    # Poisoned outbox entries parked (docs/uplink.md, "Parked entries"): state 'parked' (and 'voided' once a
    # technician voids one) with the time; the person each entry settles, so a parked entry holds back only
    # that person's later entries. Rows queued before this are filled from their settlement.
    (
        "0011_outbox_parked",
        """
        ALTER TABLE outbox ADD COLUMN psn_no TEXT NOT NULL DEFAULT '';
        ALTER TABLE outbox ADD COLUMN parked_at TEXT;
        UPDATE outbox SET psn_no =
            COALESCE((SELECT s.psn_no FROM settlements s WHERE s.msgid = outbox.msgid), '');
        CREATE INDEX outbox_psn_state ON outbox(psn_no, state, seq);
        """,
    ),
    # The in-memory 1:N index (docs/identity.md, "The index and the second factor"): the last four
    # characters of the ID number bucket a large gallery's search (kept when certno itself is replaced
    # by a keyed hash), and a revision per person whose templates changed, so a serving terminal reloads
    # only those people when another process (`medpay enroll`, a sync) changed the gallery.
    (
        "0012_index_last4",
        """
        ALTER TABLE persons ADD COLUMN certno_last4 TEXT;
        UPDATE persons SET certno_last4 = upper(substr(certno, -4));
        CREATE INDEX persons_certno_last4 ON persons(certno_last4);
        CREATE TABLE template_revisions (psn_no TEXT PRIMARY KEY, rev INTEGER NOT NULL);
        CREATE INDEX template_revisions_rev ON template_revisions(rev);
        """,
    ),
    ("0013_settlements_reversible", _settlements_reversible),
    (
        "0014_payments",
        """
        CREATE TABLE payments (
            msgid TEXT PRIMARY KEY,
            out_trade_no TEXT NOT NULL UNIQUE,
            chrg_bchno TEXT NOT NULL,
            psn_no TEXT NOT NULL,
            estimate_fen INTEGER NOT NULL,
            fen INTEGER,
            basis TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL,
            channel TEXT NOT NULL DEFAULT '',
            wallet TEXT NOT NULL DEFAULT '',
            transaction_id TEXT NOT NULL DEFAULT '',
            code_url TEXT NOT NULL DEFAULT '',
            expires_at TEXT,
            polls INTEGER NOT NULL DEFAULT 0,
            out_refund_no TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            reversal TEXT NOT NULL DEFAULT '',
            phases TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX payments_state ON payments(state);
        CREATE TABLE staff (
            staff_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            salt BLOB NOT NULL,
            hash BLOB NOT NULL,
            created_at TEXT NOT NULL,
            disabled_at TEXT
        )
        """,
    ),
    # People and credentials at rest under the device key (docs/threat-model.md, "Stored state"): the ID
    # number as HMAC + last four, name/ID/sex/birth date sealed, QR tokens and card numbers as HMACs.
    ("0015_people_keyed", seal_people),
    # The audit chain keyed (docs/threat-model.md, "Stored state"): HMAC-SHA256 under keys/audit.key,
    # every existing record re-MACed from the first, the re-keying recorded (terminal/store/audit_rekey.py).
    ("0017_audit_keyed", rekey),
    # The audit heads reported upstream and its verdicts; the high-water mark of each signed artefact
    # (a policy bundle's revision per region and year) so an older signed file is refused after a newer.
    (
        "0018_heads_and_high_water",
        """
        CREATE TABLE audit_head_reports (
            id INTEGER PRIMARY KEY,
            seq INTEGER NOT NULL,
            mac TEXT NOT NULL,
            reported_at TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'refused')),
            reason TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE signed_high_water (
            kind TEXT NOT NULL,
            artefact TEXT NOT NULL,
            revision INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (kind, artefact)
        );
        """,
    ),
    # Fund supervision (issue 19.7/8/10): the upstream's per-person history from the gallery delta
    # (recent settlements anywhere, year totals and the msgids they count), and the refusals, flags and
    # 政策找人 hints kept for the hospital's insurance office (terminal/store/person_history.py).
    (
        "0020_person_history",
        """
        CREATE TABLE person_history (
            psn_no TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            as_of TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE supervision_events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('refused', 'flagged', 'hint')),
            psn_no TEXT NOT NULL,
            chrg_bchno TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE INDEX supervision_events_at ON supervision_events(at);
        """,
    ),
    # The 2207's header kept with its payment row (a 2208 without the pruned envelope); retry counters.
    ("0021_payment_rows", add_payment_rows),
    # Staff sign-ins re-checked on every use: a revision bumped by each change to a person (role,
    # disabling) so their older tokens stop at once (terminal/app/staff_auth.py). Every completed payment
    # now prints its receipt, whichever path completed it (terminal/app/receipts.py): those completed
    # before this version are marked so the first start does not print a day's receipts again.
    (
        "0022_staff_revision_and_receipts_due",
        """
        ALTER TABLE staff ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
        INSERT OR IGNORE INTO printed_receipts (msgid, state, at, detail)
            SELECT msgid, 'before', updated_at, 'completed before every payment printed its receipt'
            FROM payments WHERE state IN ('paid', 'no_cash', 'external')
        """,
    ),
)
