"""Reference upstream for demos and tests: a real FastAPI server with its own SQLite file.

It speaks the wire contract of terminal/uplink/wire.py on one POST path, is idempotent on msgid,
prices settlements authoritatively with the same rule engine on its own copy of people and
accumulators, and injects faults on request (admin endpoint or CLI flags):

    down        every call answers 503 (as a gateway in maintenance would)
    slow_s      every call waits this many seconds first
    http500     the next N calls fail with HTTP 500 before anything is committed
    lost        the next N settlements are committed, then the reply is withheld for lost_hang_s
    differs     the authoritative result moves this amount from the fund to the patient
    tamper      policy bundles are served with a field altered after signing
    gallery_tamper     gallery deltas are served with a field altered after signing
    gallery_malformed  gallery deltas carry a cut-short template, correctly signed
    clock_skew_s       the upstream's clock runs this far ahead (医保电子凭证 tokens expire on it)

医保电子凭证 tokens are issued with POST /admin/ec-tokens {"psn_no", "ttl_s"?} (5 minutes by default)
and resolved once by 1101 with mdtrt_cert_type 01 (devkit/upstream/ec_tokens.py).

People are added with POST /admin/persons (POST /admin/demo-people adds the demo's people, for
`medpay demo --upstream`). Face enrolments (templates, consent, benefit facts) are added with
POST /admin/gallery/enrol and removed with POST /admin/gallery/remove; terminals fetch them as signed
deltas (9103). The delta signing key is kept next to the database and published at GET /admin/gallery/key.

    python -m devkit.upstream --port 8765 --db /tmp/upstream.sqlite --persons people.json \
        --gallery-trusted /tmp/gallery_keys.json
"""
