"""ota.py - vmodule-cloud ota (to be written)."""


def register(sub):
    p = sub.add_parser("ota", help="(not written yet)")
    p.set_defaults(func=lambda args: 1)
