"""A standalone SOLAPI (알림톡/SMS/LMS) look-alike server, standard library only: dev runs, tests, demos.

It speaks the HTTP API the `solapi` SDK calls (HMAC-SHA256 request signing, POST /messages/v4/send-many/detail,
GET /messages/v4/list-old), with faults, and a page showing what each phone received (/__sandbox__/phone)."""
