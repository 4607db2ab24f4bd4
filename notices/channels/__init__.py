"""The notice channels: a small port (base.py) and one adapter per provider (solapi.py alone speaks SOLAPI)."""
