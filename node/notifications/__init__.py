"""Notifications: telling counsellors, advisers and admins what happened to their cases and partners.

``models.py`` the ``notifications`` table; ``sweep.py`` finds the events in the tables that already record them
and inserts the rows (the design is in its docstring); ``mail.py`` e-mails them (no personal data);
``services.py`` a user's own list, unread count, marking read and e-mail preferences; ``loop.py`` runs the
sweep and the mailer in the delivery worker's companion thread (``ccm-node deliver``), with the injected clock.
The web page is ``node/web/notifications.py``; it also sweeps, cheaply, before it shows the list.
"""
