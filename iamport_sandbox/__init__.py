"""An offline, deterministic look-alike of the Iamport (PortOne V1) REST API.

Standard library only. See README.md in this folder for how to run it and what it simulates.
"""

from iamport_sandbox.server import DEFAULT_IMP_KEY, DEFAULT_IMP_SECRET, SandboxServer

__all__ = ["DEFAULT_IMP_KEY", "DEFAULT_IMP_SECRET", "SandboxServer"]
