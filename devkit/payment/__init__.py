"""Reference payment gateway for demos and tests: a real HTTP server on loopback with its own SQLite file.

It speaks the aggregated-payment contract of docs/payment.md (signed /v1 calls: QR order, micropay,
query, cancel, refund, refund query, the day's bill), is idempotent on out_trade_no and out_refund_no,
and injects faults on request (POST /control/faults or flags of `python -m devkit payment`):

    decline            every micropay is declined with this err_code (NOTENOUGH, AUTHCODEEXPIRE, …)
    slow_s             every signed call waits this many seconds first (demos)
    hold               every signed call waits before processing until POST /control/release (tests)
    lost               the next N calls that change something commit, then the connection drops
    userpaying         every micropay answers USERPAYING and resolves after N queries
    userpaying_result  how it resolves: SUCCESS or a decline err_code (e.g. USERCANCEL)
    refund_fail        the next N refunds fail (REFUND_FAIL); a retry with the same out_refund_no may succeed
    down               every signed call answers a signed 503 SERVICE_UNAVAILABLE, nothing processed
    bad_signature      answers are signed with a wrong key
    duplicate_notify   n/a: this gateway sends no notifications (docs/payment.md §8)

The patient's phone is simulated by POST /control/pay-qr {"code_url"} (or {"out_trade_no"}), with an
optional "channel"; POST /control/expire {"out_trade_no"} runs a QR order's time out; GET /control/orders
lists every order with its refunds. Control endpoints are unsigned: loopback development only.

    python -m devkit payment --db /tmp/pay.sqlite --key-file /tmp/pay.key   # prints "… ready http://…"
"""
