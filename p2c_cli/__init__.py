"""The `p2c` command line and the local stand-ins for Azure (Azurite, a host-like runner).

Not deployed: imports point down, into function_app and p2c_core, never the other way.
"""
