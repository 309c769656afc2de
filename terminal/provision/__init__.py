"""Provisioning: `medpay-provision` and the model converters; imported only by the CLI entry points."""
