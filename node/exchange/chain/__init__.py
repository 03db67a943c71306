"""Consent across the chain: what happens to every copy of a case after it was handed over.

``withdrawal`` (withdraw consent, revoke a handover, and their appliers), ``known_withdrawals`` (the
withdrawals known for a consent, read wherever one is checked), ``erasure`` (what erasing means at a
holder), ``forwarding`` and ``custody`` (a case passed on, with a verified chain of custody), ``disclosures``
(the origin's record of who holds what), ``retention``, ``subject_access`` (the export), ``models``,
``schemas`` and the ``/api/v1`` ``views``.

May import: ``handovers``, ``inbox``, ``delivery``, ``trust``, ``node.exchange.models``, ``node.cases``, the
node core, ``protocol``.
"""
