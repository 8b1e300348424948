"""Centrala: an asyncio SIP softswitch and hosted virtual PBX."""

__version__ = "0.1.0"
