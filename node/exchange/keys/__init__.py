"""Key changes that reach partners: this node rotating or revoking its keys, and a partner doing so.

``rotation`` (new keys announced to every partner as ``key_rotated`` through the outbox; a partner's
announcement taken by its applier), ``revocation`` (this node's signed revocation statements, and a partner's
accepted), ``revocation_sending`` (statements posted to partners or written to a file) and ``views`` (the
``/federation/v1/revocation`` endpoint). The keys themselves, and partners' key history, are in ``trust``.

May import: ``inbox``, ``delivery``, ``trust``, ``node.exchange.models``, the node core, ``protocol``.
"""
