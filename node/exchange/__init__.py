"""The exchange between partner nodes: trust, the transactional outbox, delivery, and the inbox.

``partners`` (trust by card and confirmed fingerprint), ``keystore`` (this node's keys and card), ``outbox``
(``enqueue`` in the caller's transaction), ``queue`` / ``worker`` / ``retry`` / ``transport`` (delivery),
``federation`` (the ``/federation/v1`` endpoints), ``inbox`` (verify, apply, store, receipt), ``directory``
(the protocol's Directory and History over the database), ``dispatch`` (appliers per message type).
"""
