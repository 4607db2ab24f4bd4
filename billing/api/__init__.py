"""The REST API of the billing layer: billing keys, invoices, payments, refunds, and the API plumbing
(error rendering, error schema, token login) shared with subscriptions.api."""
