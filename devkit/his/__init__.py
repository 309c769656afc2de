"""Reference HIS for demos and tests: the bill interface of docs/kiosk.md, with its own SQLite file.

    GET  /pending-bills?psn_no=…&fixmedins_code=…   a person's unpaid bills (number, type, time, total)
    GET  /bills/<chrg_bchno>                         one unpaid bill in the national feedetail shape
    POST /bills/<chrg_bchno>/settled                 mark it paid; idempotent on msgid

Every call needs `Authorization: Bearer <token>`. Fault switches (POST /admin/faults or CLI flags):

    down        every call answers 503 (as an HIS in maintenance would)
    slow_s      every call waits this many seconds first
    malformed   bills are served with a fee line missing its code and a price that is not a number

Bills are added with POST /admin/bills (`[{"psn_no": …, "bill": {…}}]`) or `--bill PSN_NO=FILE`;
`--demo` adds config/bills/*.json for the person the reader simulators' QR code and card belong to.
`--token-file` is read, or created with a fresh token (0600) when missing, so the same file can be
the terminal's `<data>/keys/his.token`:

    python -m devkit.his --port 8766 --db /tmp/his.sqlite --token-file <data>/keys/his.token --demo
"""
