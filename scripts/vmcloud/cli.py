"""cli.py - argument parsing of vmodule-cloud: every subcommand module
registers its own subparser (register(subparsers)) and sets func."""
import argparse

from vmcloud import ota, provision, serve

# usage errors exit 2 (argparse), a failed operation 1
def main(argv):
    p = argparse.ArgumentParser(prog="vmodule-cloud",
                                description="the Tencent cloud side of vmoduled on a real MQTT broker")
    sub = p.add_subparsers(dest="command", required=True)
    serve.register(sub)
    ota.register(sub)
    provision.register(sub)
    args = p.parse_args(argv)
    return args.func(args)
