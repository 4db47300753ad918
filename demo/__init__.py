"""The one-command demo: a relay, the user's window and the technician's, wired together.

It runs the three programs as subprocesses and never imports them: they
stay independent programs, exactly as they are deployed.
"""
