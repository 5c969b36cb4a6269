"""events.py - the event output of vmodule-cloud: with --json one JSON object
per line on stdout, {"event": "<kind>", ...fields}; without, one readable
line per event ("<kind>: key=value ..."). Lines are written whole and
flushed at once, from any thread. Callers never pass a secret."""
import json
import sys
import threading


class Events:
    def __init__(self, json_mode, out=None):
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.lock = threading.RLock()  # a signal handler may emit inside an emit

    def emit(self, kind, text=None, **fields):
        """text, when given, is the readable line (the JSON form ignores it)."""
        if self.json_mode:
            line = json.dumps(dict(event=kind, **fields), separators=(",", ":"))
        elif text is not None:
            line = text
        else:
            line = kind + ": " + " ".join("%s=%s" % (k, json.dumps(v) if not isinstance(v, str)
                                                     else v) for k, v in fields.items())
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

    @staticmethod
    def error(text):
        sys.stderr.write("vmodule-cloud: %s\n" % text)
        sys.stderr.flush()


def add_json_arg(parser):
    parser.add_argument("--json", action="store_true",
                        help="print every event as one JSON object per line")
