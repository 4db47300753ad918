"""The support record's pure core (issue 11): typed events, canonical JSON, signed chains.

- :mod:`common.record.events`: the closed set of event kinds and their payloads;
- :mod:`common.record.jcs`: RFC 8785 canonical JSON (integers and strings, no floats);
- :mod:`common.record.log`: signed, hash-chained events and the :class:`RecordLog`
  that appends them for one actor;
- :mod:`common.record.verify`: :func:`verify_log`, the offline check, with its
  problems in plain words.

No I/O and no clock: the caller passes the time and the signing key. The
user's device key is kept on disk by :mod:`common.device_key`.
"""
