"""The uplink: wire models, envelope signing and the HTTP client that speaks to the upstream."""
