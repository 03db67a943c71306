"""Delivery: getting this node's messages to its partners, once each and in order.

The transactional outbox (``outbox.enqueue`` in the caller's transaction), the queue of claims and outcomes
(``queue``), retry policy per partner (``retry``), HTTP transport (``transport``), the delivery worker
(``worker``) and its wake-up (``wakeup``), and the export of store-and-forward bundles (``bundles``).

May import: ``trust``, ``node.exchange.models``, the node core, ``protocol``.
"""
