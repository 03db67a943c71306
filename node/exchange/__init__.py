"""The exchange between partner nodes, in rooms; each room's ``__init__`` says what it holds and may import.

From the bottom up (a room imports only from rooms below it, the node core, ``node.cases`` and ``protocol``):

``models``      the three tables every room reads: partners, outbound and inbound messages
``trust/``      who this node trusts and with which keys: partners, cards, partners' key history, this node's
                key files and card, the protocol directory over the database
``delivery/``   the transactional outbox, the queue, retry policy, transport, the worker, wake-up, bundle export
``inbox/``      receiving: the verifying inbox, dispatch to the appliers, ``/federation/v1`` card and inbox,
                bundle import
``keys/``       key changes that reach partners: rotation (announced, and a partner's taken), revocation
``handovers/``  a case handed to a partner: send and preview, decisions, progress, status, closing, summary
``chain/``      consent across the chain: withdrawal and revocation, erasure, forwarding and custody,
                disclosures, retention, subject access

``keys/`` and ``handovers/`` stand side by side (neither imports the other); ``chain/`` stands on
``handovers/``. ``wiring`` is on top: it imports every room's appliers, so that they register with
``inbox.dispatch``, and is imported by the app and the command line. docs/architecture.md draws it;
tests/test_architecture.py holds it.
"""
