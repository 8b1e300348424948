"""The back-to-back user agent: every call is two (or more) independent dialogs."""
