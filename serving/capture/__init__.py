"""Production data capture: the predictions the server made, shipped to object storage (or a
local directory, a `file://` store) for the drift check. `writer` (the server's queue and
writer thread), `segments` (the spool the server writes), `codec` (request records and the
documented lines), `shipper` (expands and uploads segments), `python -m serving.capture` (the
sidecar). Nothing here is imported unless capture is configured; only the shipper needs the
`capture` extra (fsspec, s3fs, tenacity).
"""
