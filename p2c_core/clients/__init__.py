"""The one OData layer both services are served by, and what serves it.

`odata` (paging, typed errors, Retry-After, `$batch` via `batch`), `concurrency` (requests in
flight per service), `retry`, `auth` (bearer tokens), `keys` (literals and key segments),
`metadata` (`$metadata`), and the two thin service layers `dataverse` and `fno`.
"""
