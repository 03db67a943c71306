"""The staff web interface: server-rendered pages for counsellors and advisers, in four languages.

``node.web.setup.init_web(app)`` assembles it: languages (Flask-Babel), CSRF on every form (Flask-WTF), the
browser session (:mod:`.login`, :mod:`.guard`), security headers, error pages, and one blueprint per audience.
Views are thin: they read a form, call the same domain services the JSON API calls, and render a template.
"""
