"""Build: the SIP hot path compiled to C with mypyc.

The modules below are plain, fully typed Python; mypyc (part of mypy) turns
them into C extensions at install time, which roughly halves the CPU a
message costs (parse, validate, transactions, dialogs, answer a REGISTER)
and speeds up SDP offer/answer by about 1.6x.  They stay
importable as Python: set ``CENTRALA_PURE_PYTHON=1`` to skip compilation,
and a machine without a C compiler falls back to the sources (the
extensions are optional).  An installed extension shadows its ``.py``:
after editing one of these files, reinstall (``make test`` and ``make run``
do it); the test suite refuses to run on a stale build.
"""

import os

from setuptools import setup

COMPILED = [
    "switch/sip/address.py",
    "switch/sip/builders.py",
    "switch/sip/client_invite.py",
    "switch/sip/client_noninvite.py",
    "switch/sip/core.py",
    "switch/sip/dialog.py",
    "switch/sip/dialog_invite.py",
    "switch/sip/dialog_session_timer.py",
    "switch/sip/events.py",
    "switch/sip/framing.py",
    "switch/sip/grammar.py",
    "switch/sip/headers.py",
    "switch/sip/message.py",
    "switch/sip/routing.py",
    "switch/sip/server_invite.py",
    "switch/sip/server_noninvite.py",
    "switch/sip/status.py",
    "switch/sip/timers.py",
    "switch/sip/transaction_base.py",
    "switch/sip/transaction_layer.py",
    "switch/sip/uri.py",
    "switch/sip/validate.py",
    "switch/sip/randomness.py",
    "switch/auth/digest.py",
    "switch/registrar/location.py",
    "switch/registrar/registrar.py",
    "switch/registrar/service.py",
    "switch/dispatch.py",
    "media/offer_answer.py",
    "media/relay.py",
    "media/rtp.py",
    "media/sdp.py",
]


def extensions() -> list:
    if os.environ.get("CENTRALA_PURE_PYTHON"):
        return []
    from mypyc.build import mypycify

    modules = mypycify(COMPILED, opt_level="3")
    for ext in modules:
        ext.optional = True  # no compiler: run the Python sources instead
    return modules


setup(ext_modules=extensions())
