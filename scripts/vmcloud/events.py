"""events.py - what vmodule-cloud prints. With --json every event is one JSON
object per line on stdout, {"event": "<kind>", ...fields}; without it, one
readable line per event (the text the subcommand gives). Safe to call from
any thread (HTTP handlers, paho's network thread). Errors go to stderr."""
import json
import sys
import threading


def add_json_arg(parser):
    parser.add_argument("--json", action="store_true",
                        help="print every event as one JSON object per line")


class Events:
    def __init__(self, as_json, out=None):
        self.as_json = as_json
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def emit(self, kind, text, **fields):
        line = json.dumps(dict(event=kind, **fields)) if self.as_json else text
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    @staticmethod
    def error(text):
        sys.stderr.write("vmodule-cloud: %s\n" % text)
        sys.stderr.flush()
