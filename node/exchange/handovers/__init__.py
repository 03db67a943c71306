"""Handovers: a consented case summary sent to a partner, answered, and followed by progress.

``send`` (prepare, preview and send), ``summary`` (a case as the protocol's summary and consent record, and
back), ``summary_gaps`` (what a summary cannot carry, field by field, with the reason), ``decisions``
(accept, decline), ``progress`` (progress back, partner stages), ``status`` (a handover's status, lists and
pages), ``closing`` (``case_closed``), ``appliers`` (what a received handover, answer or progress does),
``chain_hooks`` (what the chain room lends a handover: consent withdrawals, a forward's re-check and relay),
``models``, ``schemas`` and the ``/api/v1`` ``views``.

May import: ``inbox``, ``delivery``, ``trust``, ``node.exchange.models``, ``node.cases``, the node core,
``protocol``.
"""
