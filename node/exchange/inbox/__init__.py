"""The inbox: what partners send to this node, verified before anything is stored or acted on.

``receive`` (verify, apply, store and sign the receipt, in one transaction; SPEC.md section 6),
``dispatch`` (the registry where each room's appliers register, one per message type), ``federation`` (the
``/federation/v1`` card and inbox endpoints) and ``bundle_import`` (a partner's bundle, or the receipts for
ours, read from a file).

May import: ``delivery``, ``trust``, ``node.exchange.models``, the node core, ``protocol``.
"""
