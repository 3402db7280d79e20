"""The operator console: a page served by the app itself (and by `p2c console` locally).

api.py answers requests (no server of its own), auth.py says who asks, views.py and
actions.py are what it shows and does, audit.py records each action, static/ the page.
"""
