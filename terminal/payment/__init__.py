"""The HTTP adapter for the aggregated-payment gateway (the PaymentGateway port, docs/payment.md)."""
