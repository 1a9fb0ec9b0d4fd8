"""Who the simulator claims to be: the Asterisk the reference captures were taken from."""

AMI_VERSION = "11.0.0"
BANNER = f"Asterisk Call Manager/{AMI_VERSION}"
ASTERISK_VERSION = "22.10.1"
VERSION_LINE = f"Asterisk {ASTERISK_VERSION} built by root @ vm on a x86_64 running Linux on 2026-11-26 06:07:29 UTC"
