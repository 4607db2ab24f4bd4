"""PortOne V2 on the sandbox: the same server, store and ledger as V1, spoken in V2's paths, JSON and errors.

`ledger.V2Ledger` translates V2 operations onto the V1 ledger's rules (test cards, one paid payment per id,
checksum-guarded cancels, schedules run by the sandbox clock); `api.V2Surface` serves them under `/v2` with
`Authorization: PortOne <secret>`, V2 error bodies and the V1 fault/latency/gate controls; `signing` signs
webhooks the Standard Webhooks way; `sdk` is the browser SDK stand-in (`PortOne.requestIssueBillingKey`).
"""
