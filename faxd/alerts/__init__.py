"""Admin notifications (``[notify]``): tell a person when faxd needs one.

``events.py`` writes what happened, in the same transaction as the change it
reports; ``mailer.py`` turns the waiting events into mails, at most one per
kind per ``min_interval``, and retries a mail that could not be sent.
"""
