"""serve.py - vmodule-cloud serve (to be written)."""


def register(sub):
    p = sub.add_parser("serve", help="(not written yet)")
    p.set_defaults(func=lambda args: 1)
