"""The exchange's resync room: bringing a node back in step with its partners after a restore from backup.

``ccm-node backup restore`` marks every partner as out of step (``Partner.resync_since``). Nothing is then
delivered to that partner (``delivery.queue``) until the delivery worker's companion loop (``requester``) has
asked it, over ``POST /federation/v1/resync`` (``views``, answered by ``responder``), for what passed between
the two nodes since the backup: the partner queues its messages to us again and lists what it received from us,
and we record those as delivered and re-chain what we still have to send (``rechain``). The wire format is
``protocol.resync`` (SPEC.md section 7a).
"""
